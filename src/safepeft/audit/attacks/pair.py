"""PAIR, Prompt Automatic Iterative Refinement (Chao et al. 2023, https://arxiv.org/abs/2310.08419).

N parallel attacker conversations ("streams") each propose a prompt, the target answers, a rater scores the answer
1-10, and the score and answer go back to the attacker, for K iterations or until a score of 10.

Defaults are the paper's: N = 20 streams, K = 3 iterations (so at most 60 target queries per goal); from the
official code: attacker sampling at temperature 1 / top-p 0.9 with 500 new tokens, up to 5 attempts to get
parseable JSON, the last 4 exchanges kept in the attacker's context, 150 new tokens for the target, and the
attacker reply prefilled with the JSON opening. Deviation: without a judge model the rater is the shared refusal
classifier (1 / 5 / 10 for refused / partial / complied), like the keyword judge the official code offers.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from safepeft.audit.attacks import prompts as P
from safepeft.audit.attacks.iterative import Context, IterativeAttack, outcome
from safepeft.audit.attacks.search import (
    SUCCESS_SCORE,
    AttackerSpec,
    Conversation,
    SearchResult,
    derived_seed,
    propose,
)


class PairSpec(AttackerSpec):
    """PAIR parameters (defaults from the paper and the official code)."""

    n_streams: int = Field(20, ge=1)
    """Parallel attacker conversations."""
    n_iterations: int = Field(3, ge=1)
    """Refinement rounds per stream."""
    keep_last_n: int = Field(4, ge=1)
    """Attacker context: this many previous (feedback, attack) exchanges."""
    max_queries: int = Field(60, ge=1)
    """Hard cap on target queries per goal (default: streams x iterations)."""


class PAIR(IterativeAttack):
    """PAIR: parallel attacker conversations refine a prompt from the target's answers and 1-10 ratings."""

    name = "pair"
    description = "PAIR: parallel attacker conversations refine a prompt from the target's answers and 1-10 ratings."
    paper = "https://arxiv.org/abs/2310.08419"
    spec_class = PairSpec

    def _search(self, ctx: Context) -> SearchResult:
        spec: PairSpec = self.spec
        system = P.attacker_system(ctx.goal, ctx.target_str)
        first = P.attacker_first_message(ctx.goal, ctx.target_str)
        streams = [Conversation(f"s{i}", feedback=first) for i in range(spec.n_streams)]
        trace: list[dict[str, Any]] = []
        for iteration in range(1, spec.n_iterations + 1):
            remaining = spec.max_queries - ctx.log.asked["target"]
            if remaining <= 0:
                break
            active = streams[:remaining]
            params = spec.attacker_params(derived_seed(ctx.seed, ctx.goal, iteration))
            attacks = propose(ctx.attacker, active, system, params, spec.max_attack_attempts, spec.keep_last_n,
                              ctx.log.ask, ("pair", iteration))
            live = [(conv, attack) for conv, attack in zip(active, attacks, strict=True) if attack is not None]
            if not live:
                continue
            prompts = [attack["prompt"] for _, attack in live]
            responses = ctx.query_target(prompts)
            scores = ctx.rate(prompts, responses)
            for (conv, _), prompt, response, score in zip(live, prompts, responses, scores, strict=True):
                trace.append({"id": f"{conv.node_id}.{iteration}", "parent": conv.node_id, "depth": iteration,
                              "prompt": prompt, "response": response, "score": score, "on_topic": True,
                              "kept": True})
                conv.feedback = P.attacker_feedback(response, score, ctx.goal)
            if max(scores) >= SUCCESS_SCORE:
                break
        return outcome(ctx, trace)
