"""The suite contract every audit suite implements, and how `--suite NAME[:SOURCE]` is parsed.

A suite turns a Generator (any backend, guarded or not) into a SuiteResult. Generation suites use a judge;
log-likelihood suites (fairness) ignore it. The audit runner knows nothing about individual suites.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from pydantic import Field

from safepeft.errors import ConfigError
from safepeft.models.protocol import Generator
from safepeft.records.base import Spec
from safepeft.records.generation import Prompt
from safepeft.records.results import SuiteResult


class AuditOptions(Spec):
    """Knobs shared by all suites of one audit run."""

    limit: int | None = Field(None, ge=1)
    """Use at most this many items (after per-category sampling), chosen with `seed`."""
    per_category: int | None = Field(None, ge=1)
    """Use at most this many items per category, chosen with `seed`."""
    seed: int = 0
    """Seed for subset sampling and bootstrap CIs."""
    max_new_tokens: int = Field(128, ge=1)
    """Generation budget per item for generation suites."""
    system_prompt: str | None = None
    """System prompt for the audited model (None keeps the chat template default)."""
    mode: Literal["loglikelihood", "generate"] = "loglikelihood"
    """How multiple-choice suites (BBQ) score: by log-likelihood, or by generating and parsing a letter."""
    bootstrap: int = Field(1000, ge=100)
    """Bootstrap resamples for 95% CIs."""
    attacks: tuple[str, ...] = ()
    """Jailbreak attacks (`--attack NAME`) that jailbreak suites apply to their base suite's prompts."""
    prompt_kind: Literal["harmful", "benign"] = "harmful"
    """What the prompts of `--suite prompts:FILE` are (`--kind`): harmful requests, or benign ones (over-refusal)."""
    split: Literal["all", "validation", "test"] = "all"
    """Which items of each suite: all, or the validation or test part of a split by item-id hash (choose
    hyper-parameters on `validation`, report on `test`)."""
    validation_share: float = Field(0.3, gt=0.0, le=1.0)
    """Share of each suite's items in the validation part of the split (1.0: every item; the test part is empty)."""


class SuiteItem(Spec):
    """One prompt of a generation suite, with its category in the canonical taxonomy and in the source's own."""

    id: str
    """Stable id within the suite (pairs items across runs and variants)."""
    prompt: Prompt
    """What the audited model is sent (a user turn, or a chat)."""
    category: str
    """Canonical category key (``S1_violent_crimes`` ... ``S11_sexual_content``, ``other``)."""
    source_category: str
    """The benchmark's own label, kept for provenance."""
    request: str | None = None
    """The bare request a judge should read (e.g. HarmBench's behavior without its context); None = the prompt."""
    context: str | None = None
    """Context passage the request refers to (HarmBench contextual behaviors), shown to judges that take one."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Suite-specific details copied into the result samples (persona, functional category, twin id ...)."""


class Suite(ABC):
    """A named item set plus its scoring. Subclasses are registered in ``safepeft.audit.suites.SUITES``."""

    kind: ClassVar[str]
    """safety | overrefusal | fairness | utility (jailbreak results are produced by the attack runner)."""
    description: ClassVar[str] = ""
    needs_source: ClassVar[bool] = False
    """True when the suite reads a user's file/dir/hub id (`--suite NAME:SOURCE`)."""

    def __init__(self, source: str | None = None, name: str | None = None) -> None:
        self.source = source
        self.name = name or type(self).__name__.lower()
        """Registry name the suite was built under (set by ``safepeft.audit.suites.build_suite``)."""

    @property
    def result_name(self) -> str:
        """Key of this suite in results.json ``suites`` (jailbreak suites override: ``jailbreak:<suite>``)."""
        return self.name

    def items(self) -> list[SuiteItem]:
        """The suite's prompts (generation suites). Log-likelihood suites have their own item types."""
        raise ConfigError(
            f"Suite {self.name!r} (kind {self.kind}) has no prompt items.",
            "Only generation suites (safety, over-refusal) can be the base of a jailbreak suite.",
        )

    @abstractmethod
    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        """Score the generator on this suite."""


def parse_suite_arg(text: str) -> tuple[str, str | None]:
    """'harmbench:/data/hb.csv' -> ('harmbench', '/data/hb.csv'); 'builtin' -> ('builtin', None)."""
    name, sep, source = text.partition(":")
    return name, (source if sep else None)
