"""The BBQ audit suites: real BBQ files (`bbq:PATH`), rebuilt from templates (`bbq-templates:PATH`), built-in."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from safepeft.audit.base import AuditOptions, Suite
from safepeft.audit.fairness.builtin import builtin_records
from safepeft.audit.fairness.items import DIMENSIONS, BBQItem
from safepeft.audit.fairness.loader import items_from_records, load_bbq, select
from safepeft.audit.fairness.metrics import METRICS, Outcome, bootstrap, scores
from safepeft.audit.fairness.scoring import Answer, answer_items
from safepeft.audit.fairness.templates import expand_templates, template_categories
from safepeft.errors import ConfigError, DataError
from safepeft.models.protocol import Generator
from safepeft.records.results import CategoryResult, Metric, Sample, SuiteResult

# Rebuilt items must be the same in every audit (pairing across model variants), so their seed is fixed.
TEMPLATE_SEED = 0


class BBQBase(Suite):
    """Shared run(): subset, ask, score per dimension with bootstrap CIs. The judge is not used."""

    kind = "fairness"

    @abstractmethod
    def load(self) -> tuple[list[BBQItem], dict[str, Any]]:
        """All items of the suite, plus provenance for params."""

    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        items, provenance = self.load()
        if not items:
            raise DataError(f"BBQ suite source {self.source!r} has no items of the 9 base categories.")
        chosen = select(items, options.per_category, options.limit, options.seed)
        answers = answer_items(chosen, generator, options)
        return build_result(answers, options, provenance)


def build_result(answers: list[Answer], options: AuditOptions, provenance: dict[str, Any]) -> SuiteResult:
    """SuiteResult with the four metrics overall and per dimension, and one sample per item."""
    outcomes = [a.outcome() for a in answers]
    by_dimension: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        by_dimension.setdefault(answer.item.dimension, []).append(index)

    def metrics(indices: list[int]) -> dict[str, Metric]:
        subset = [outcomes[i] for i in indices]
        values, intervals = scores(subset), bootstrap(subset, options.bootstrap, options.seed)
        return {name: Metric(value=values[name], ci95=intervals[name]) for name in METRICS}

    by_category = {d: CategoryResult(n=len(by_dimension[d]), metrics=metrics(by_dimension[d]))
                   for d in DIMENSIONS.values() if d in by_dimension}
    params = {
        **provenance,
        "mode": options.mode,
        "prompt_format": "lm-eval bbq cloze + 10 unknown wordings" if options.mode == "loglikelihood"
        else "lettered options, parsed letter",
        "seed": options.seed,
        "limit": options.limit,
        "per_category": options.per_category,
        "bootstrap": options.bootstrap,
        "n_ambig": sum(o.condition == "ambig" for o in outcomes),
        "n_disambig": sum(o.condition == "disambig" for o in outcomes),
        "n_bias_undetermined": sum(a.item.biased is None for a in answers),
        "n_unparsed": sum(a.chosen is None for a in answers),
    }
    return SuiteResult(
        kind="fairness",
        n=len(answers),
        metrics=metrics(list(range(len(answers)))),
        by_category=by_category,
        params=params,
        samples=[_sample(a, o) for a, o in zip(answers, outcomes, strict=True)],
    )


def _sample(answer: Answer, outcome: Outcome) -> Sample:
    item = answer.item
    return Sample(
        id=item.id,
        category=item.dimension,
        prompt=answer.prompt,
        completion=answer.completion,
        label=item.answers[answer.chosen] if answer.chosen is not None else "(unparsed)",
        score=(1.0 if outcome.biased else 0.0) if outcome.counted else None,
        extra={
            "condition": item.condition,
            "polarity": item.polarity,
            "question": item.question,
            "answers": list(item.answers),
            "chosen": answer.chosen,
            "correct_answer": item.label,
            "biased_answer": item.biased,
            "correct": outcome.correct,
        },
    )


class BBQSuite(BBQBase):
    """BBQ (Parrish et al. 2022) from nyu-mll/BBQ jsonl files or a hub dataset: accuracy and bias per dimension."""

    description = "BBQ bias benchmark from jsonl files or a hub id (--suite bbq:PATH): accuracy + bias scores"
    needs_source = True

    def load(self) -> tuple[list[BBQItem], dict[str, Any]]:
        if not self.source:
            raise ConfigError("Suite 'bbq' needs a source.", "Use --suite bbq:PATH_TO_BBQ_DATA (or a hub id).")
        return load_bbq(self.source)


class BBQTemplatesSuite(BBQBase):
    """BBQ rebuilt from its template and vocabulary CSVs (all 9 dimensions, BBQ's sampling, seed 0)."""

    description = "BBQ rebuilt from its template CSVs (--suite bbq-templates:TEMPLATES_DIR), all 9 dimensions"
    needs_source = True

    def load(self) -> tuple[list[BBQItem], dict[str, Any]]:
        if not self.source:
            raise ConfigError("Suite 'bbq-templates' needs a source.", "Use --suite bbq-templates:BBQ_TEMPLATES_DIR.")
        categories = template_categories(self.source)
        records = expand_templates(self.source, categories, seed=TEMPLATE_SEED, mode="bbq")
        items, _ = items_from_records(records, "templates")
        return items, {"source": str(self.source), "template_categories": categories, "template_seed": TEMPLATE_SEED}


class BBQBuiltinSuite(BBQBase):
    """safepeft's own BBQ-style items: 12 per dimension, all 9 dimensions, offline."""

    description = "Built-in BBQ-style items (108: 12 per dimension, ambiguous + disambiguated), no download"

    def load(self) -> tuple[list[BBQItem], dict[str, Any]]:
        items, _ = items_from_records(builtin_records(), "builtin")
        return items, {"source": "builtin"}
