"""The iterative-attack contract: search for a jailbreak of one goal with an attacker model and a rater.

A finished search is stored under ``attack-results`` (keyed by attack, parameters, goal, seed and the identities
of the three models), so a resumed audit skips finished goals; an unfinished one replays its stored queries.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from safepeft.audit.attacks import prompts as P
from safepeft.audit.attacks.base import Attack
from safepeft.audit.attacks.search import RESULTS, SUCCESS_SCORE, QueryLog, Rater, SearchResult, refusal_rater
from safepeft.models.protocol import Generator
from safepeft.records.base import Spec
from safepeft.records.generation import GenParams
from safepeft.store.sqlite import RunStore, request_key


@dataclass
class Context:
    """Everything one search needs: the three models, the query log and the target's decoding parameters."""

    goal: str
    target_str: str
    target: Generator
    attacker: Generator
    rater: Rater
    log: QueryLog
    target_params: GenParams
    seed: int

    def query_target(self, prompts: list[str]) -> list[str]:
        return self.log.ask("target", self.target, prompts, self.target_params, ())

    def rate(self, prompts: list[str], responses: list[str]) -> list[int]:
        return self.rater.rate(self.goal, prompts, responses, self.log.ask)


class IterativeAttack(Attack):
    """Base of PAIR/TAP: holds the spec, the attacker and the rater; subclasses implement `_search`."""

    iterative = True
    spec_class: ClassVar[type[Spec]]

    def __init__(self, spec: Spec | None = None, *, attacker: Generator | None = None,
                 rater: Rater | None = None) -> None:
        self.spec: Any = spec if spec is not None else self.spec_class()
        self.attacker = attacker
        """Attacker model; None uses the target model itself (self red-teaming)."""
        self.rater = rater if rater is not None else refusal_rater()

    def search(self, goal: str, target: Generator, store: RunStore | None = None, seed: int = 0,
               target_str: str | None = None, system_prompt: str | None = None) -> SearchResult:
        """Run (or resume, or read back) the search for one goal."""
        attacker = self.attacker if self.attacker is not None else target
        params = GenParams(max_new_tokens=self.spec.target_max_new_tokens, system_prompt=system_prompt)
        key = request_key(self.name, self.spec.model_dump(mode="json"), goal, seed, target.identity(),
                          attacker.identity(), self.rater.identity(), params.model_dump(mode="json"))
        if store is not None and (done := store.get_record(RESULTS, key)) is not None:
            return SearchResult.from_json(done)
        ctx = Context(goal, target_str or P.target_string(goal), target, attacker, self.rater, QueryLog(store),
                      params, seed)
        result = self._search(ctx)
        if store is not None:
            store.put_record(RESULTS, key, result.to_json())
        return result

    @abstractmethod
    def _search(self, ctx: Context) -> SearchResult:
        """The attack's algorithm."""


def best_of(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Highest score, earliest on ties (nodes are in evaluation order)."""
    best = None
    for node in nodes:
        if node.get("score") is not None and (best is None or node["score"] > best["score"]):
            best = node
    return best


def outcome(ctx: Context, trace: list[dict[str, Any]]) -> SearchResult:
    best = best_of(trace)
    return SearchResult(
        goal=ctx.goal,
        prompt=None if best is None else best["prompt"],
        response=None if best is None else best["response"],
        score=0 if best is None else best["score"],
        success=best is not None and best["score"] >= SUCCESS_SCORE,
        queries=dict(ctx.log.asked),
        trace=trace,
    )
