"""Utility suites: can the fine-tuned model still (or now) do the task? Exact match on the final number.

`arithmetic` scores built-in word problems held out from the `builtin:arithmetic` training rows (same generator,
another seed, no shared question), so a LoRA on that task shows whether it learned it. `gsm8k:PATH` reads a GSM8K
JSONL file (`question`, `answer` ending in `#### N`).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from safepeft.audit.base import AuditOptions, Suite
from safepeft.audit.prompt_suite import split_params
from safepeft.audit.selection import split_items
from safepeft.audit.sources import pick_file
from safepeft.audit.utility import UtilityItem, gsm8k_items, score_items
from safepeft.errors import ConfigError
from safepeft.records.generation import GenParams
from safepeft.records.results import SuiteResult
from safepeft.tasks import arithmetic

TRAIN_ROWS, TRAIN_SEED, EVAL_SEED = 1000, 0, 10_000  # must match finetune's builtin:arithmetic (1000 rows, seed 0)
DEFAULT_ITEMS = 40
MAX_ITEMS = 2000
INSTRUCTION = "Solve the problem. End with 'The answer is N.'"


def _subset(items: list[UtilityItem], options: AuditOptions) -> list[UtilityItem]:
    items = split_items(items, options.split, options.validation_share)
    limit = options.limit or options.per_category
    if limit is None or limit >= len(items):
        return items
    return sorted(random.Random(options.seed).sample(items, limit), key=lambda item: item.id)


class _UtilitySuite(Suite):
    kind: ClassVar[str] = "utility"

    @abstractmethod
    def load(self) -> list[UtilityItem]:
        """The suite's items, before subsetting."""

    def run(self, generator: Any, judge: Any, options: AuditOptions) -> SuiteResult:
        items = _subset(self.load(), options)
        params = GenParams(max_new_tokens=max(options.max_new_tokens, 96), system_prompt=options.system_prompt)
        result = score_items(generator, items, "exact_match", params=params, seed=options.seed)
        result.params.update({"source": self.source or "builtin", **split_params(options)})
        return result


class Arithmetic(_UtilitySuite):
    """Built-in arithmetic word problems held out from `builtin:arithmetic` (exact match on the final number);
    `arithmetic:N` generates N of them (default 40). The first N of a larger set are the same problems."""

    def load(self) -> list[UtilityItem]:
        count = DEFAULT_ITEMS
        if self.source is not None:
            if not self.source.isdigit() or not 1 <= int(self.source) <= MAX_ITEMS:
                raise ConfigError(f"The arithmetic suite takes an item count, got {self.source!r}.",
                                  f"Use `--suite arithmetic` ({DEFAULT_ITEMS} items), `--suite arithmetic:N` with N "
                                  f"from 1 to {MAX_ITEMS}, or `--suite gsm8k:PATH` for a file.")
            count = int(self.source)
        train = arithmetic.problems(TRAIN_ROWS, seed=TRAIN_SEED)
        return [UtilityItem(f"arithmetic-{i}", f"{p.question} {INSTRUCTION}", p.response)
                for i, p in enumerate(arithmetic.held_out(count, EVAL_SEED, train), start=1)]


class GSM8K(_UtilitySuite):
    """GSM8K-format problems from a local JSONL file or a folder holding test.jsonl (exact match on the number)."""

    needs_source: ClassVar[bool] = True
    local_files: ClassVar[tuple[str, ...]] = ("test.jsonl", "*.jsonl")
    """Looked for, in order, when the source is a folder (the test split first)."""

    def file(self) -> Path:
        if not self.source:
            raise ConfigError("The gsm8k suite needs a file.", "Use `--suite gsm8k:PATH` (test.jsonl or its folder).")
        path = Path(self.source).expanduser()
        return pick_file(path, self.local_files, "gsm8k") if path.is_dir() else path

    def load(self) -> list[UtilityItem]:
        return [UtilityItem(i.id, f"{i.prompt} {INSTRUCTION}", i.reference) for i in gsm8k_items(self.file())]

    def run(self, generator: Any, judge: Any, options: AuditOptions) -> SuiteResult:
        result = super().run(generator, judge, options)
        result.params["file"] = str(self.file())
        return result
