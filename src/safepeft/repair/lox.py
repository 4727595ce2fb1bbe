"""LoX (Perin et al., COLM 2025, arXiv:2506.15606): harden an aligned model before fine-tuning, without training.

Per weight matrix, with the alignment update V = W_aligned − W_base and P_k(V) its rank-k truncated SVD:
W_lox = W_aligned + α·P_k(V). Extrapolating along the top-k "safety subspace" moves the model to a flatter region,
so a later fine-tune erodes safety less. `safepeft harden lox` writes the result as a model directory that `train`
starts from.

Deviations (docs/repair.md): the SVD of each matrix is exact up to 1024 and randomized (range finder with 2 power
iterations, `lowrank.py`) above, where the exact SVD of a 4096² matrix takes tens of seconds on a CPU; the relative
residual of every matrix is recorded. k larger than a matrix's size, or than the numerical rank of its V, is an
error (the extra directions would be noise). Matrices whose V is zero are left unchanged and listed as skipped.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.weights import OnDevice, WeightSource, open_weights
from safepeft.records.base import Spec
from safepeft.records.results import ArtifactRef
from safepeft.repair.lineage import check_lineage
from safepeft.repair.lowrank import SvdMethod, truncated_svd
from safepeft.repair.model_io import frobenius_sq, pair_weights, relative_changes, write_model
from safepeft.repair.report import HARDEN_FILE, HardenReport, ModuleDecision
from safepeft.repair.resta import is_linear_weight


class LoXSpec(Spec):
    """Parameters of LoX hardening."""

    k: int = Field(6, ge=1)
    """Rank of the safety subspace: the top-k singular directions of each matrix's alignment update."""
    alpha: float = Field(1.25, ge=0.0, allow_inf_nan=False)
    """Extrapolation factor α: W_aligned + α·P_k(W_aligned − W_base) (0 = the aligned model unchanged)."""
    targets: list[str] = Field(default_factory=lambda: ["all-linear"])
    """Weight matrices to extrapolate: all-linear (every 2-D weight but embeddings/lm_head) or module-name suffixes."""
    svd: SvdMethod = "auto"
    """exact, randomized, or auto (exact when the matrix's smaller side is at most 1024)."""


def lox_weight(w_aligned: torch.Tensor, v: torch.Tensor, k: int, alpha: float, svd: SvdMethod = "auto",
               name: str = "the matrix") -> tuple[torch.Tensor, Any]:
    """W_aligned + α·P_k(V) in fp32, and the truncated SVD it used."""
    factors = truncated_svd(v, k, svd, name=f"the alignment update of {name}")
    return extrapolate(w_aligned, factors, alpha), factors


def extrapolate(w_aligned: torch.Tensor, factors: Any, alpha: float) -> torch.Tensor:
    """W_aligned + α·left·right in a fresh fp32 buffer (the input is never modified)."""
    return w_aligned.float().clone().addmm_(factors.left, factors.right, alpha=alpha)


def selected(name: str, shape: tuple[int, ...], targets: list[str]) -> bool:
    """Whether LoX extrapolates this tensor."""
    if len(shape) != 2:
        return False
    if "all-linear" in targets and is_linear_weight(name, shape):
        return True
    return any(name.removesuffix(".weight").endswith(t) for t in targets if t != "all-linear")


class LoX:
    """Extrapolate the aligned weights along the top-k directions of the alignment update (training-free)."""

    name: ClassVar[str] = "lox"
    paper: ClassVar[str] = "Perin et al., LoX: Low-Rank Extrapolation Robustifies LLM Safety, COLM 2025 " \
                           "(arXiv:2506.15606)"
    spec_class: ClassVar[type[Spec]] = LoXSpec
    output: ClassVar[str] = "model"

    @staticmethod
    def harden(**kwargs: Any) -> HardenReport:
        """See `harden_lox`."""
        return harden_lox(**kwargs)


def harden_lox(base: str | WeightSource, aligned: str | WeightSource, out: str | os.PathLike[str],
               spec: LoXSpec | dict[str, Any] | None = None, overwrite: bool = False,
               progress: bool = True, device: str = "auto") -> HardenReport:
    """Write W_aligned + α·P_k(V) for every selected matrix (other tensors copied) to `out` + safepeft_harden.json.
    Each matrix's SVD runs on `device` (auto, cpu, cuda, cuda:N); the result comes back to the CPU to be written."""
    from safepeft.repair.run import _provenance, _spec_name, repair_device

    started = time.perf_counter()
    device = repair_device(device)
    spec = spec if isinstance(spec, LoXSpec) else _spec(spec or {})
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"The output {out} already exists.", "Pick a new --out directory or pass --overwrite.")
    with ExitStack() as stack:
        base_src = OnDevice(stack.enter_context(open_weights(base)) if isinstance(base, str) else base, device)
        aligned_src = OnDevice(stack.enter_context(open_weights(aligned)) if isinstance(aligned, str) else aligned,
                               device)
        base_fp, aligned_fp = getattr(base_src, "fingerprint", None), getattr(aligned_src, "fingerprint", None)
        if base_fp is not None and base_fp == aligned_fp:
            raise IncompatibleArtifactError(f"--base and --aligned are the same weights ({base_fp}).",
                                            "Pass the unaligned base and the safety-aligned model.")
        pairs = pair_weights(base_src, aligned_src, _spec_name(base), _spec_name(aligned))
        targets = [n for n in pairs if selected(n, tuple(aligned_src.shape(n)), spec.targets)]
        if not targets:
            raise ConfigError(f"No weight matrix matches --targets {spec.targets}.",
                              "Use all-linear or suffixes of module names such as q_proj.")
        changes = relative_changes(base_src, aligned_src, {n: pairs[n] for n in targets})
        median_change = check_lineage(changes, _spec_name(base), _spec_name(aligned))
        for name in targets:  # k against each matrix's size before any work
            shape = tuple(aligned_src.shape(name))
            if spec.k > min(shape):
                raise ConfigError(f"k={spec.k} is larger than the rank bound min{shape}={min(shape)} of {name}.",
                                  f"Pass --k {min(shape)} or less.")
        records: dict[str, ModuleDecision] = {}
        wanted = set(targets)

        def edit(name: str, w_aligned: torch.Tensor) -> torch.Tensor | None:
            if name not in wanted:
                return None
            v = w_aligned.float() - base_src.get(pairs[name]).float()
            shape = (int(v.shape[0]), int(v.shape[1]))
            v_norm = frobenius_sq(v) ** 0.5
            if v_norm == 0.0:
                records[name] = ModuleDecision(name=name, shape=shape, rank=spec.k, score=None, action="skipped",
                                               reason="aligned and base weights are identical (V = 0)",
                                               details={"v_norm": 0.0})
                return None
            factors = truncated_svd(v, spec.k, spec.svd, name=f"the alignment update of {name}")
            del v  # free the update before the output buffer exists: one d_out×d_in matrix alive at a time
            new = extrapolate(w_aligned, factors, spec.alpha)
            held = float((factors.singular_values.double() ** 2).sum()) / v_norm**2
            records[name] = ModuleDecision(name=name, shape=shape, rank=spec.k, score=None, action="edited", details={
                "v_norm": v_norm, "sigma_1": float(factors.singular_values[0]),
                "sigma_k": float(factors.singular_values[-1]), "fraction_of_update_held": min(held, 1.0),
                "lowrank_relative_error": factors.relative_error})
            return new

        def render(stats: dict[str, Any]) -> str:
            edited = [m for m in records.values() if m.action == "edited"]
            summary = {"matrices": len(targets), "extrapolated": len(edited),
                       "skipped": len(records) - len(edited), "k": spec.k, "alpha": spec.alpha,
                       "median_fraction_of_update_held": _median([m.details["fraction_of_update_held"]
                                                                  for m in edited]),
                       "median_relative_alignment_update": median_change, "bytes_written": stats["bytes"]}
            report = HardenReport(method="lox", params=spec.model_dump(),
                                  base=ArtifactRef(spec=_spec_name(base), fingerprint=base_fp),
                                  aligned=ArtifactRef(spec=_spec_name(aligned), fingerprint=aligned_fp),
                                  modules=[records[n] for n in sorted(records)], summary=summary,
                                  provenance=_provenance(time.perf_counter() - started), device=device)
            reports.append(report)
            return report.model_dump_json(indent=2)

        reports: list[HardenReport] = []
        write_model(out, aligned_src, edit, f"LoX with alpha={spec.alpha}", HARDEN_FILE, render, progress)
    return reports[-1]


def _spec(params: dict[str, Any]) -> LoXSpec:
    from pydantic import ValidationError

    try:
        return LoXSpec(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Invalid {field} {first.get('input')!r} for lox: {first['msg']}.",
                          "See `safepeft harden lox --help`.") from exc


def _median(values: list[float]) -> float | None:
    from statistics import median

    return median(values) if values else None
