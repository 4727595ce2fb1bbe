"""TAP, Tree of Attacks with Pruning (Mehrotra et al. 2023, https://arxiv.org/abs/2312.02119).

Each leaf of the tree asks the attacker for `branching_factor` refinements. Phase 1 prunes children whose prompt
drifted off the goal (rater's on-topic check) and keeps at most `width`; those are sent to the target and rated;
phase 2 keeps the `width` best-rated as the next leaves. It stops at a rating of 10 or at `depth`.

Defaults are the paper's: branching factor 4, width 10, depth 10 (so at most 100 target queries per goal), one
root; from the official code: the last 3 exchanges kept in the attacker context, attacker sampling and JSON
handling as in PAIR, 150 target tokens, ties broken at random (seeded here). Deviation: when no child is on topic
the official code's fallback indexes the list with a score (a bug); we follow its stated intent and keep the two
best-ranked children so the tree does not die.
"""

from __future__ import annotations

import random
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

KEEP_WHEN_NONE_ON_TOPIC = 2


class TapSpec(AttackerSpec):
    """TAP parameters (defaults from the paper and the official code)."""

    branching_factor: int = Field(4, ge=1)
    """Refinements the attacker proposes per leaf and depth."""
    width: int = Field(10, ge=1)
    """Leaves kept after each pruning phase."""
    depth: int = Field(10, ge=1)
    """Maximum tree depth (attacker rounds)."""
    n_streams: int = Field(1, ge=1)
    """Root nodes."""
    keep_last_n: int = Field(3, ge=1)
    """Attacker context: this many previous (feedback, attack) exchanges."""
    max_queries: int = Field(100, ge=1)
    """Hard cap on target queries per goal (default: width x depth)."""


class TAP(IterativeAttack):
    """TAP: a tree of attacker refinements, pruned off-topic and by 1-10 rating, queried breadth-first."""

    name = "tap"
    description = "TAP: a tree of attacker refinements, pruned off-topic and by 1-10 rating, queried breadth-first."
    paper = "https://arxiv.org/abs/2312.02119"
    spec_class = TapSpec

    def _search(self, ctx: Context) -> SearchResult:
        spec: TapSpec = self.spec
        system = P.attacker_system(ctx.goal, ctx.target_str)
        first = P.attacker_first_message(ctx.goal, ctx.target_str)
        leaves = [Conversation(f"r{i}", feedback=first) for i in range(spec.n_streams)]
        trace: list[dict[str, Any]] = []
        for depth in range(1, spec.depth + 1):
            children = [Conversation(f"{leaf.node_id}.{b}", list(leaf.history), leaf.feedback, leaf.node_id)
                        for leaf in leaves for b in range(spec.branching_factor)]
            params = spec.attacker_params(derived_seed(ctx.seed, ctx.goal, depth))
            attacks = propose(ctx.attacker, children, system, params, spec.max_attack_attempts, spec.keep_last_n,
                              ctx.log.ask, ("tap", depth))
            nodes = [{"conv": c, "prompt": a["prompt"]}
                     for c, a in zip(children, attacks, strict=True) if a is not None]
            if not nodes:
                break
            on_topic = ctx.rater.on_topic(ctx.goal, [n["prompt"] for n in nodes], ctx.log.ask)
            kept = prune(nodes, [int(t) for t in on_topic], spec.width, _rng(ctx, depth, 1), KEEP_WHEN_NONE_ON_TOPIC)
            kept = kept[: max(0, spec.max_queries - ctx.log.asked["target"])]
            for node, topical in zip(nodes, on_topic, strict=True):
                node["on_topic"] = topical
                if not any(node is k for k in kept):
                    trace.append(_record(node, depth, score=None, kept=False))
            if not kept:
                break
            responses = ctx.query_target([n["prompt"] for n in kept])
            scores = ctx.rate([n["prompt"] for n in kept], responses)
            for node, response, score in zip(kept, responses, scores, strict=True):
                node["response"], node["score"] = response, score
            leaves_nodes = prune(kept, scores, spec.width, _rng(ctx, depth, 2), 0)
            for node in kept:
                trace.append(_record(node, depth, score=node["score"], kept=any(node is k for k in leaves_nodes)))
            if max(scores) >= SUCCESS_SCORE or ctx.log.asked["target"] >= spec.max_queries:
                break
            leaves = []
            for node in leaves_nodes:
                node["conv"].feedback = P.attacker_feedback(node["response"], node["score"], ctx.goal)
                leaves.append(node["conv"])
        return outcome(ctx, trace)


def prune(nodes: list[dict[str, Any]], scores: list[int], width: int, rng: random.Random,
          keep_when_none: int) -> list[dict[str, Any]]:
    """The `width` best-scored nodes with a positive score (ties in random order); if none is positive, the
    `keep_when_none` best-ranked."""
    order = list(range(len(nodes)))
    rng.shuffle(order)
    order.sort(key=lambda i: -scores[i])  # stable: shuffled order breaks ties
    positive = [nodes[i] for i in order if scores[i] > 0][:width]
    return positive if positive else [nodes[i] for i in order[:keep_when_none]]


def _rng(ctx: Context, depth: int, phase: int) -> random.Random:
    return random.Random(derived_seed(ctx.seed, ctx.goal, depth, phase))


def _record(node: dict[str, Any], depth: int, score: int | None, kept: bool) -> dict[str, Any]:
    conv = node["conv"]
    return {"id": conv.node_id, "parent": conv.parent_id, "depth": depth, "prompt": node["prompt"],
            "response": node.get("response"), "score": score, "on_topic": node["on_topic"], "kept": kept}
