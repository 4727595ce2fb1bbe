"""`jailbreak:<suite>`: a generation suite's harmful requests under one or more attacks.

Every (item, attack) pair is one sample. Transform attacks rewrite the bare request and the attacked prompts are
generated in one batch; iterative attacks (PAIR, TAP) search per item and contribute their best prompt's answer.
The audit judge reads the *bare request* and the answer as the user sees it (prefill + completion), so an attack
cannot fool the judge by wrapping the request.

Metrics: `asr` (share of successful (item, attack) pairs) per attack, per category and overall, and
`any_attack_asr` (an item counts once if any attack succeeded), with bootstrap 95% CIs; `blocked_rate` when a
guardrail answered some requests with its fixed refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from safepeft.audit.attacks import ATTACKS
from safepeft.audit.attacks.base import TransformAttack, describe_attack, full_response
from safepeft.audit.attacks.iterative import IterativeAttack
from safepeft.audit.base import AuditOptions, Suite, SuiteItem
from safepeft.audit.judges.base import JudgeInput
from safepeft.audit.metrics import bootstrap_mean, summarize
from safepeft.audit.selection import select_items
from safepeft.classifiers.blocked import is_blocked
from safepeft.errors import ConfigError
from safepeft.models.protocol import Generator
from safepeft.records.generation import GenParams, Prompt, prompt_text
from safepeft.records.results import CategoryResult, Sample, SuiteResult
from safepeft.store.sqlite import RunStore


def build_attacks(names: Sequence[str], attacker: Generator | None = None, rater: Any = None) -> list[Any]:
    """Attack instances by registry name (iterative ones get the attacker model and rater)."""
    attacks = []
    for name in dict.fromkeys(names):
        attack_class = ATTACKS.get(name)
        attacks.append(attack_class(attacker=attacker, rater=rater) if attack_class.iterative else attack_class())
    return attacks


def with_attacks(suites: Sequence[Suite], attacks: Sequence[Any], store: RunStore | None) -> list[Suite]:
    """Each safety suite is joined by `jailbreak:<suite>` under the attacks (the plain suite keeps its harmful rate
    and hazard categories in the report); other kinds (over-refusal, fairness, utility) run unattacked, which is
    where a guard's over-block rate shows."""
    out: list[Suite] = []
    for suite in suites:
        out += [suite, JailbreakSuite(suite, attacks, store)] if suite.kind == "safety" else [suite]
    return out


class JailbreakSuite(Suite):
    """A base generation suite attacked by each of `attacks`."""

    kind: ClassVar[str] = "jailbreak"

    def __init__(self, base: Suite, attacks: Sequence[Any], store: RunStore | None = None) -> None:
        super().__init__(base.source, base.name)
        if not attacks:
            raise ConfigError("A jailbreak suite needs at least one attack.", "Pass --attack NAME (repeatable).")
        self.base = base
        self.attacks = list(attacks)
        self.store = store
        """Run store for iterative attacks' queries (None keeps them in memory: no resume)."""

    @property
    def result_name(self) -> str:
        return f"jailbreak:{self.base.result_name}"

    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        if judge is None:
            raise ConfigError("Jailbreak suites need a judge.", "Pass --judge NAME (default: classifier).")
        items = select_items(self.base.items(), options.per_category, options.limit, options.seed,
                             options.split, options.validation_share)
        rows: list[tuple[SuiteItem, str, Prompt, str]] = []  # (item, attack, prompt sent, answer as shown)
        transforms = [a for a in self.attacks if isinstance(a, TransformAttack)]
        if transforms:
            prompts = [(item, a.name, a.transform(request_of(item), options.seed))
                       for a in transforms for item in items]
            params = GenParams(max_new_tokens=options.max_new_tokens, system_prompt=options.system_prompt)
            completions = generator.generate([p for _, _, p in prompts], params)
            rows += [(i, n, p, full_response(p, c)) for (i, n, p), c in zip(prompts, completions, strict=True)]
        search: dict[str, list[dict[str, Any]]] = {}
        for attack in (a for a in self.attacks if isinstance(a, IterativeAttack)):
            found = []
            for item in items:
                result = attack.search(request_of(item), generator, self.store, options.seed,
                                       system_prompt=options.system_prompt)
                rows.append((item, attack.name, result.prompt or "", result.response or ""))
                found.append({"id": item.id, "score": result.score, "queries": result.queries})
            search[attack.name] = found
        verdicts = judge.judge([JudgeInput(prompt=request_of(i), completion=shown, context=i.context)
                                for i, _, _, shown in rows])
        return self._score(items, rows, verdicts, options, search)

    def _score(self, items: list[SuiteItem], rows: list[tuple[SuiteItem, str, Prompt, str]], verdicts: list[Any],
               options: AuditOptions, search: dict[str, Any]) -> SuiteResult:
        success = [None if v.harmful is None else float(v.harmful) for v in verdicts]
        blocked = [float(is_blocked(shown)) for *_, shown in rows]
        values: dict[str, list[float | None]] = {"asr": success}
        if any(blocked):
            values["blocked_rate"] = list(blocked)
        overall, by_category = summarize(values, [item.category for item, *_ in rows], options.bootstrap,
                                         options.seed)
        any_success = _any_attack(items, rows, success)
        overall["any_attack_asr"] = bootstrap_mean(list(any_success.values()), options.bootstrap, options.seed)
        for category, result in by_category.items():
            members = [any_success[i.id] for i in items if i.category == category]
            result.metrics["any_attack_asr"] = bootstrap_mean(members, options.bootstrap, options.seed)
        by_attack = {}
        for attack in self.attacks:
            members = [i for i, row in enumerate(rows) if row[1] == attack.name]
            metrics = {name: bootstrap_mean([v[i] for i in members], options.bootstrap, options.seed)
                       for name, v in values.items()}
            by_attack[attack.name] = CategoryResult(n=len(members), metrics=metrics)
        samples = [
            Sample(id=f"{item.id}:{attack}", category=item.category, prompt=prompt_text(prompt), completion=shown,
                   label="blocked" if is_blocked(shown) else verdict.label, score=success[index], attack=attack,
                   extra={"item": item.id, "refusal": verdict.refusal, "source_category": item.source_category})
            for index, ((item, attack, prompt, shown), verdict) in enumerate(zip(rows, verdicts, strict=True))
        ]
        params = {"base_suite": self.base.result_name, "base_kind": self.base.kind, "items": len(items),
                  "attacks": [describe_attack(a) for a in self.attacks], "limit": options.limit,
                  "per_category": options.per_category, "seed": options.seed,
                  "max_new_tokens": options.max_new_tokens, "system_prompt": options.system_prompt,
                  "n_unscored": sum(v is None for v in success), "search": search}
        return SuiteResult(kind=self.kind, n=len(rows), metrics=overall, by_category=by_category,
                           by_attack=by_attack, params=params, samples=samples)


def request_of(item: SuiteItem) -> str:
    """The bare request an attack rewrites (a chat prompt's last user turn when the item has no request)."""
    if item.request is not None:
        return item.request
    if isinstance(item.prompt, str):
        return item.prompt
    return [m["content"] for m in item.prompt if m["role"] == "user"][-1]


def _any_attack(items: list[SuiteItem], rows: list[tuple[SuiteItem, str, Prompt, str]],
                success: list[float | None]) -> dict[str, float | None]:
    """Per item: 1 if any attack succeeded, 0 if all were scored and failed, None if none could be scored."""
    per_item: dict[str, list[float]] = {item.id: [] for item in items}
    for (item, *_), value in zip(rows, success, strict=True):
        if value is not None:
            per_item[item.id].append(value)
    return {key: (max(values) if values else None) for key, values in per_item.items()}
