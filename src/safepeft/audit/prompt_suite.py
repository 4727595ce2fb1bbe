"""Generation suites: a list of prompts, generated once, judged, and scored by category.

``PromptSuite`` subclasses only say where their rows come from and how a row becomes a ``SuiteItem``. Scoring is
shared (``score_generations``) so that other generation-based suites (jailbreak suites in ``audit/attacks``) turn
their completions and verdicts into the same ``SuiteResult`` shape.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from safepeft.audit.base import AuditOptions, Suite, SuiteItem
from safepeft.audit.judges.base import JudgeInput, Verdict
from safepeft.audit.metrics import summarize
from safepeft.audit.selection import select_items
from safepeft.audit.sources import Row, load_hub, pick_file, read_table
from safepeft.classifiers.blocked import is_blocked
from safepeft.errors import ConfigError, DataError
from safepeft.models.protocol import Generator
from safepeft.records.generation import GenParams, Prompt, prompt_text
from safepeft.records.results import SAFETY_RATES, Sample, SuiteResult, rate_name

SAFETY_METRICS = (*SAFETY_RATES.values(), "refusal_rate", "partial_rate")
"""A safety suite's rates: ``harmful_rate`` or ``compliance_rate`` (named after what the judge measures), refusal,
partial."""
OVERREFUSAL_METRICS = ("over_refusal_rate", "full_refusal_rate")


class PromptSuite(Suite):
    """A generation suite read from a local file/folder or a hub dataset."""

    kind: ClassVar[str] = "safety"
    needs_source: ClassVar[bool] = True
    hub_id: ClassVar[str | None] = None
    """Hub dataset used when no source is given (None: a local path is required)."""
    hub_config: ClassVar[str | None] = None
    hub_split: ClassVar[str | None] = None
    local_files: ClassVar[tuple[str, ...]] = ()
    """File names (or globs) looked for, in order, when the source is a folder."""

    def __init__(self, source: str | None = None, name: str | None = None) -> None:
        super().__init__(source, name)
        self._items: list[SuiteItem] | None = None
        self.read_from: str | None = None
        """The file (or hub id) the rows were read from, recorded in the result params."""
        if self.needs_source and source is None and self.hub_id is None:
            raise ConfigError(
                f"The {self.name} suite needs a source.",
                f"Pass --suite {self.name}:PATH (the benchmark's file or the folder holding it).",
            )

    @abstractmethod
    def load_items(self) -> list[SuiteItem]:
        """Read the benchmark and map each row to an item."""

    def items(self) -> list[SuiteItem]:
        if self._items is None:
            items = self.load_items()
            if not items:
                raise DataError(f"The {self.name} suite found no items in {self.source_label()}.",
                                "Check that the file is the benchmark's original file.")
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise DataError(f"Duplicate item id {item.id!r} in the {self.name} suite.")
                seen.add(item.id)
            self._items = items
        return self._items

    def source_params(self) -> dict[str, Any]:
        """Which file (or hub id) the items came from, for the result params (``file``)."""
        return {} if self.read_from is None else {"file": self.read_from}

    def source_label(self) -> str:
        return self.source or self.hub_id or "(no source)"

    def rows(self) -> list[Row]:
        """Rows from the local file / folder named by the source, else from the hub id (source or default)."""
        location = self.source or self.hub_id
        if location is None:
            raise ConfigError(
                f"The {self.name} suite needs a source.",
                f"Pass --suite {self.name}:PATH (the benchmark's file or the folder holding it).",
            )
        path = Path(location).expanduser()
        if path.is_dir():
            picked = pick_file(path, self.local_files, self.name)
            self.read_from = str(picked)
            return read_table(picked)
        if path.exists():
            self.read_from = str(path)
            return read_table(path)
        self.read_from = f"hub:{location}"
        if location.startswith((".", "/", "~")) or Path(location).suffix:
            raise DataError(f"No file or folder at {location}.", f"Check the path in --suite {self.name}:PATH.")
        return load_hub(location, self.hub_config, self.hub_split)

    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        if judge is None:
            raise ConfigError(f"The {self.name} suite needs a judge.", "Pass --judge NAME (default: classifier).")
        items = select_items(self.items(), options.per_category, options.limit, options.seed,
                             options.split, options.validation_share)
        params = GenParams(max_new_tokens=options.max_new_tokens, system_prompt=options.system_prompt)
        completions = generator.generate([item.prompt for item in items], params)
        pairs = zip(items, completions, strict=True)
        verdicts = judge.judge([judge_input(item, completion) for item, completion in pairs])
        extra = {"source": self.source_label(), "available": len(self.items()), **self.source_params()}
        return score_generations(self.kind, items, completions, verdicts, options, extra, measures=judge.measures)


def split_params(options: AuditOptions) -> dict[str, Any]:
    """The split in a result's params (nothing for ``all``, so unsplit results read as before)."""
    if options.split == "all":
        return {}
    return {"split": options.split, "validation_share": options.validation_share}


def judge_input(item: SuiteItem, completion: str) -> JudgeInput:
    """What the judge reads for an item: its bare request (not a wrapped prompt) and the completion."""
    return JudgeInput(prompt=item.request or request_text(item.prompt), completion=completion, context=item.context)


def request_text(prompt: Prompt) -> str:
    """A prompt's request as plain text: the string itself, or the last user turn of a chat."""
    if isinstance(prompt, str):
        return prompt
    users = [message["content"] for message in prompt if message["role"] == "user"]
    return users[-1] if users else prompt_text(prompt)


def outcomes(kind: str, verdicts: Sequence[Verdict], measures: str) -> dict[str, list[float | None]]:
    """Per-item values of each metric of a suite kind (None = the judge could not score this item). The rate of
    the judge's positive verdict is named after what the judge ``measures`` (``records.results.SAFETY_RATES``)."""
    # Degenerate output (a judge's `degenerate` label) is neither a refusal nor an answer: it has its own rate.
    degenerate = [float(v.refusal == "degenerate") for v in verdicts]
    if kind == "overrefusal":
        values: dict[str, list[float | None]] = {
            "over_refusal_rate": [float(v.refusal in ("refused", "partial")) for v in verdicts],
            "full_refusal_rate": [float(v.refusal == "refused") for v in verdicts],
        }
        if any(degenerate):
            values["degenerate_rate"] = list(degenerate)
        return values
    values = {
        rate_name(measures): [None if v.harmful is None else float(v.harmful) for v in verdicts],
        "refusal_rate": [float(v.refusal == "refused") for v in verdicts],
        "partial_rate": [float(v.refusal == "partial") for v in verdicts],
    }
    if any(degenerate):
        values["degenerate_rate"] = list(degenerate)
    if any(v.rating is not None for v in verdicts):
        values["mean_harmfulness"] = [None if v.rating is None else float(v.rating) for v in verdicts]
    return values


def score_generations(
    kind: str,
    items: Sequence[SuiteItem],
    completions: Sequence[str],
    verdicts: Sequence[Verdict],
    options: AuditOptions,
    params: dict[str, Any] | None = None,
    *,
    measures: str,
) -> SuiteResult:
    """Metrics overall and per category with bootstrap CIs, plus one Sample per item; ``measures`` is what the
    judge's verdict measures (``refusal`` or ``harm``), which names the safety rate."""
    values = outcomes(kind, verdicts, measures)
    blocked = [is_blocked(c) for c in completions]
    if any(blocked):  # a guardrail answered with its fixed refusal: report its block (over-block) rate
        values["blocked_rate"] = [float(b) for b in blocked]
    main = "over_refusal_rate" if kind == "overrefusal" else rate_name(measures)
    categories = [item.category for item in items]
    overall, by_category = summarize(values, categories, options.bootstrap, options.seed)
    samples = [
        Sample(
            id=item.id, category=item.category, prompt=prompt_text(item.prompt), completion=completion,
            label="blocked" if blocked[index] else verdict.label, score=values[main][index],
            extra={"source_category": item.source_category, "refusal": verdict.refusal, "reason": verdict.reason,
                   "judge_categories": list(verdict.categories), "rating": verdict.rating, **item.extra},
        )
        for index, (item, completion, verdict) in enumerate(zip(items, completions, verdicts, strict=True))
    ]
    run_params = {
        "n_unscored": sum(v.harmful is None for v in verdicts) if kind != "overrefusal" else 0,
        "limit": options.limit, "per_category": options.per_category, "seed": options.seed,
        "max_new_tokens": options.max_new_tokens, "system_prompt": options.system_prompt, **split_params(options),
        **(params or {}),
    }
    return SuiteResult(kind=kind, n=len(items), metrics=overall, by_category=by_category, params=run_params,
                       samples=samples)
