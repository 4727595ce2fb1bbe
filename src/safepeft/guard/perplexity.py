"""`perplexity`: an input filter against optimised gibberish (GCG-style suffixes; Jain et al. 2023,
https://arxiv.org/abs/2309.00614, and Alon & Kamfonas 2023).

A scoring language model computes each request's log-perplexity (mean negative log-likelihood per token) and
the highest log-perplexity of any `window` consecutive tokens (the paper's windowed variant, which catches a
gibberish suffix on an otherwise fluent prompt). A request is blocked when either exceeds its threshold.

Thresholds are calibrated on benign prompts: by default the maximum over a built-in set of everyday requests
(so none of them would be blocked), or a quantile over the user's own benign prompts. The paper sets its
threshold to the maximum over AdvBench prompts for the same reason: natural requests must pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from safepeft.errors import ConfigError
from safepeft.guard.base import Guard, request_text
from safepeft.records.base import Spec
from safepeft.records.generation import Prompt


class TokenScorer(Protocol):
    """Anything that gives per-token negative log-likelihoods of a text."""

    def identity(self) -> dict[str, Any]: ...

    def token_nll(self, text: str) -> list[float]: ...


class HFTokenScorer:
    """Per-token NLL from a loaded transformers model (`load_model(...)`), text scored raw (no chat template)."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def identity(self) -> dict[str, Any]:
        return {"model": self.loaded.fingerprint, "adapter": self.loaded.adapter_fingerprint}

    def token_nll(self, text: str) -> list[float]:
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            return []
        inputs = torch.tensor([[start, *ids]], device=self.loaded.device)
        with torch.inference_mode():
            logits = model(input_ids=inputs).logits[0, :-1].float()  # (n, V): position t predicts token t+1
        nll = -torch.log_softmax(logits, dim=-1).gather(-1, inputs[0, 1:, None])[:, 0]  # (n,)
        return nll.tolist()


class PerplexitySpec(Spec):
    """Perplexity-filter parameters."""

    window: int = Field(10, ge=2)
    """Tokens per window for the windowed log-perplexity."""
    threshold: float | None = None
    """Whole-request log-perplexity above which a request is blocked; None = calibrate."""
    window_threshold: float | None = None
    """Windowed log-perplexity threshold; None = calibrate."""
    quantile: float = Field(1.0, gt=0.0, le=1.0)
    """Calibration quantile over the benign prompts (1.0 = their maximum)."""


def log_perplexities(nll: Sequence[float], window: int) -> tuple[float, float]:
    """(whole-text mean NLL, max mean NLL over windows of `window` tokens); a short text is one window."""
    values = np.asarray(nll, dtype=np.float64)  # (n,)
    if values.size == 0:
        return 0.0, 0.0
    whole = float(values.mean())
    if values.size <= window:
        return whole, whole
    sums = np.convolve(values, np.ones(window), mode="valid") / window  # (n - window + 1,)
    return whole, float(sums.max())


def builtin_calibration() -> list[str]:
    """Everyday benign requests shipped with safepeft, used when the user gives no calibration set."""
    text = resources.files("safepeft.guard").joinpath("data/calibration.json").read_text(encoding="utf-8")
    return json.loads(text)


class PerplexityGuard(Guard):
    """Input filter: block requests whose (windowed) perplexity is above a benign-calibrated threshold."""

    name = "perplexity"
    description = "Input filter: block requests whose (windowed) perplexity is above a benign-calibrated threshold."
    paper = "https://arxiv.org/abs/2309.00614"
    stages = ("input",)
    spec_class = PerplexitySpec

    def __init__(self, scorer: TokenScorer, spec: PerplexitySpec | None = None,
                 calibration: Sequence[str] | None = None) -> None:
        self.scorer = scorer
        spec = spec or PerplexitySpec()
        if spec.threshold is None or spec.window_threshold is None:
            whole, window = self.calibrate(calibration or builtin_calibration(), spec)
            spec = spec.model_copy(update={"threshold": spec.threshold if spec.threshold is not None else whole,
                                           "window_threshold": spec.window_threshold
                                           if spec.window_threshold is not None else window})
        self.spec = spec

    @classmethod
    def create(cls, guard_model: Any = None, calibration: Sequence[str] | None = None,
               inner: Any = None) -> PerplexityGuard:
        """Scorer: the guard model, else the audited model itself when it is a local transformers model."""
        loaded = guard_model if guard_model is not None else getattr(inner, "loaded", None)
        if loaded is None or not hasattr(loaded, "tokenizer"):
            raise ConfigError("The perplexity guard needs a local transformers model to score prompts.",
                              "Pass --guard-model SPEC (a local model; the audited model is used when it is one).")
        return cls(HFTokenScorer(loaded), calibration=calibration)

    def calibrate(self, prompts: Sequence[str], spec: PerplexitySpec) -> tuple[float, float]:
        """Thresholds = the `quantile` of whole and windowed log-perplexity over benign prompts."""
        prompts = [p for p in prompts if p.strip()]
        if not prompts:
            raise ConfigError("The perplexity guard got an empty calibration set.",
                              "Pass benign prompts (one per line) or leave the default set.")
        scores = np.array([log_perplexities(self.scorer.token_nll(p), spec.window) for p in prompts])  # (n, 2)
        return float(np.quantile(scores[:, 0], spec.quantile)), float(np.quantile(scores[:, 1], spec.quantile))

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "scorer": self.scorer.identity()}

    def score(self, text: str) -> tuple[float, float]:
        return log_perplexities(self.scorer.token_nll(text), self.spec.window)

    def check_inputs(self, prompts: Sequence[Prompt]) -> list[str | None]:
        reasons: list[str | None] = []
        for prompt in prompts:
            whole, window = self.score(request_text(prompt))
            if whole > self.spec.threshold:
                reasons.append(f"log-perplexity {whole:.2f} > {self.spec.threshold:.2f}")
            elif window > self.spec.window_threshold:
                reasons.append(f"windowed log-perplexity {window:.2f} > {self.spec.window_threshold:.2f}")
            else:
                reasons.append(None)
        return reasons
