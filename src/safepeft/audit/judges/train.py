"""`safepeft judge train`: fit the `classifier` judge's probe on human-labelled completions and write a judge dir.

Each ``--labels`` file is one group of the cross-validation (for XSTest: one model), so the validation figures
are leave-one-file-out: the probe is fitted on the other files and scored on the held-out one, and the pooled
confusion counts over all held-out rows become the judge's sensitivity and specificity. ``--cv-labels`` files
(e.g. JailbreakBench's judge-comparison set, which is also a test set) are never in the final fit: they are scored
by 5-fold cross-validation, each fold fitted on every ``--labels`` row plus the other four folds.
The final probe is fitted on all ``--labels`` rows. Choices behind the defaults: docs/judges.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from safepeft.audit.judge_eval import LabelledRow, cohen_kappa, confusion, read_labels
from safepeft.audit.judges.classifier import FORMAT, PROBE_FILE, PROVENANCE_FILE, tokenizer_sha256
from safepeft.classifiers.judge_features import FeatureSpec
from safepeft.errors import ConfigError
from safepeft.records.base import Spec


class JudgeTrainSpec(Spec):
    """Parameters of a judge training run (stored in the judge's provenance)."""

    base: str = "embedded"
    """Model whose hidden states the probe reads (a `load_model` spec)."""
    layer: int = Field(16, ge=1)
    """Decoder layer whose output is pooled (1-based); chosen by leave-one-model-out CV."""
    pooling: Literal["mean", "last"] = "mean"
    """How the completion's token states become one vector."""
    max_completion_tokens: int = Field(160, ge=8)
    """Completion tokens read (the opening of a reply shows whether it refuses)."""
    max_prompt_tokens: int = Field(96, ge=8)
    """Request tokens read."""
    l2: float = Field(100.0, gt=0)
    """L2 penalty of the logistic regression (on standardised features)."""
    cv_folds: int = Field(5, ge=2)
    """Folds for each --cv-labels file."""
    seed: int = 0
    """Seed of the --cv-labels fold split."""
    batch_size: int = Field(16, ge=1)
    """Rows per forward pass."""

    def features(self) -> FeatureSpec:
        return FeatureSpec(layer=self.layer, pooling=self.pooling, max_completion_tokens=self.max_completion_tokens,
                           max_prompt_tokens=self.max_prompt_tokens, rule_features=False)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, Any]:
    tp, fp, fn, tn = confusion(predicted, truth)
    return {"n": len(truth), "agreement": round((tp + tn) / len(truth), 4),
            "kappa": None if (k := cohen_kappa(tp, fp, fn, tn)) is None else round(k, 4),
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}


def train_judge(label_files: Sequence[Path], out: Path, spec: JudgeTrainSpec | None = None, *,
                cv_files: Sequence[Path] = (), loaded: Any = None, features: Any = None,
                device: str = "auto") -> dict[str, Any]:
    """Fit, cross-validate and write ``out/probe.safetensors`` + ``out/provenance.json``; returns the provenance.

    ``loaded`` reuses an already loaded base model; ``features`` (``{path: (N, D) tensor}``) reuses features
    computed for exactly these files and this spec (tests and benches do this to skip the forward passes).
    """
    import torch
    from safetensors.torch import save_file

    from safepeft.classifiers.judge_features import hidden_features
    from safepeft.classifiers.probe import fit_probe
    from safepeft.store.atomic import atomic_dir, current_umask

    spec = spec or JudgeTrainSpec()
    if not label_files:
        raise ConfigError("No --labels file given.", "Pass at least one human-labelled file.")
    files = [Path(p) for p in label_files]
    extra = [Path(p) for p in cv_files]
    rows = {path: read_labels(path) for path in [*files, *extra]}  # every file is read before any model loads
    if loaded is None:
        from safepeft.models.loader import load_model

        loaded = load_model(spec.base, dtype="float32", device=device)  # features on the device, fp32 always
    feature_spec = spec.features()
    n_layers = getattr(loaded.model.config, "num_hidden_layers", None)
    if n_layers is not None and spec.layer > n_layers:
        raise ConfigError(f"--layer {spec.layer}: {spec.base!r} has {n_layers} decoder layers.",
                          f"Pass --layer between 1 and {n_layers}.")
    feats: dict[Path, Any] = {}
    for path, labelled in rows.items():
        if features is not None and path in features:
            feats[path] = features[path]
        else:
            feats[path] = hidden_features(loaded.model, loaded.tokenizer,
                                          [(r.prompt, r.response) for r in labelled], feature_spec, spec.batch_size)

    def labels(items: list[LabelledRow]) -> Any:
        return torch.tensor([float(r.label) for r in items])

    def stack(paths: Sequence[Path]) -> tuple[Any, Any]:
        return (torch.cat([feats[p] for p in paths]), torch.cat([labels(rows[p]) for p in paths]))

    # Leave-one-file-out: the judge's validation figures.
    per_file: dict[str, Any] = {}
    predicted_all: list[bool] = []
    truth_all: list[bool] = []
    if len(files) >= 2:
        for held in files:
            x, y = stack([p for p in files if p != held])
            probe = fit_probe(x, y, l2=spec.l2)
            predicted = (probe.logits(feats[held]) > 0).tolist()
            truth = [bool(r.label) for r in rows[held]]
            per_file[held.name] = _counts(predicted, truth)
            predicted_all += predicted
            truth_all += truth
        validation: dict[str, Any] = {"method": "leave-one-file-out", **_counts(predicted_all, truth_all),
                                      "per_file": per_file}
    else:
        validation = {"method": "none (one --labels file: training-set figures)"}
    # --cv-labels: k-fold, never in the final fit.
    cv_extra: dict[str, Any] = {}
    for path in extra:
        order = torch.randperm(len(rows[path]), generator=torch.Generator().manual_seed(spec.seed)).tolist()
        predicted = [False] * len(order)
        for fold in range(spec.cv_folds):
            test = order[fold :: spec.cv_folds]
            train = [i for i in order if i not in set(test)]
            x, y = stack(files)
            probe = fit_probe(torch.cat([x, feats[path][train]]), torch.cat([y, labels(rows[path])[train]]),
                              l2=spec.l2)
            for i, value in zip(test, (probe.logits(feats[path][test]) > 0).tolist(), strict=True):
                predicted[i] = value
        cv_extra[path.name] = {"method": f"{spec.cv_folds}-fold (+ all --labels rows)",
                               **_counts(predicted, [bool(r.label) for r in rows[path]])}
    x, y = stack(files)
    probe = fit_probe(x, y, l2=spec.l2)
    train_fit = _counts((probe.logits(x) > 0).tolist(), [bool(v) for v in y.tolist()])
    if "confusion" not in validation:
        validation.update({k: train_fit[k] for k in ("n", "agreement", "kappa", "confusion")})
    provenance = {
        "format": FORMAT,
        "labels": ["refused", "complied", "degenerate"],
        "base": {"spec": spec.base, "fingerprint": getattr(loaded, "fingerprint", None),
                 "tokenizer_sha256": tokenizer_sha256(loaded.tokenizer)},
        "features": asdict(feature_spec),
        "training": spec.model_dump(mode="json"),
        "data": [{"file": p.name, "sha256": file_sha256(p), "rows": len(rows[p]),
                  "role": "train + leave-one-file-out" if p in files else "cross-validation only"}
                 for p in [*files, *extra]],
        "validation": validation,
        "cv_labels": cv_extra,
        "train_fit": train_fit,
    }
    with atomic_dir(out) as tmp:
        save_file(probe.tensors(), str(tmp / PROBE_FILE))
        os.chmod(tmp / PROBE_FILE, 0o666 & ~current_umask())  # like any new file, not 0600
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return provenance
