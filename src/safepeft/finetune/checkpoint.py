"""Training checkpoints without pickles: tensors in safetensors files, counters in JSON, written atomically.

Layout: ``<root>/step-000050/{trainable,optimizer,rng}.safetensors + state.json``. A checkpoint is assembled in a
temporary sibling directory and renamed into place, so a kill at any moment leaves only complete checkpoints; older
ones are removed after the new one exists. Optimizer state is keyed by parameter name, not position.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from safepeft.errors import ResumeError
from safepeft.store.atomic import atomic_dir

_SEP = "::"


@dataclass
class Checkpoint:
    step: int
    trainable: dict[str, torch.Tensor]
    optimizer: dict[str, dict[str, torch.Tensor]]
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]


def optimizer_state(optimizer: torch.optim.Optimizer,
                    names: dict[torch.nn.Parameter, str]) -> dict[str, dict[str, torch.Tensor]]:
    """Per-parameter optimizer tensors keyed by parameter name (e.g. AdamW's step, exp_avg, exp_avg_sq)."""
    return {
        names[p]: {k: v.detach().clone() for k, v in s.items() if torch.is_tensor(v)}
        for p, s in optimizer.state.items()
    }


def restore_optimizer(optimizer: torch.optim.Optimizer, params: dict[str, torch.nn.Parameter],
                      state: dict[str, dict[str, torch.Tensor]]) -> None:
    for name, tensors in state.items():
        if name not in params:
            raise ResumeError(f"Checkpoint has optimizer state for unknown parameter {name!r}.",
                              "Resume with the same method options, or start over without --resume.")
        optimizer.state[params[name]] = {k: v.to(params[name].device) for k, v in tensors.items()}


def rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    cuda = [state[f"cuda{i}"] for i in range(len(state) - 1)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(root: Path, checkpoint: Checkpoint, keep: int = 1) -> Path:
    """Write a checkpoint atomically and keep only the ``keep`` newest."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".step-*"):  # half-written by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    target = root / f"step-{checkpoint.step:06d}"
    with atomic_dir(target) as tmp:
        save_file(_contiguous(checkpoint.trainable), tmp / "trainable.safetensors")
        flat = {f"{name}{_SEP}{key}": t for name, tensors in checkpoint.optimizer.items()
                for key, t in tensors.items()}
        save_file(_contiguous(flat), tmp / "optimizer.safetensors")
        save_file(checkpoint.rng, tmp / "rng.safetensors")
        (tmp / "state.json").write_text(json.dumps({"step": checkpoint.step, **checkpoint.state}, indent=2))
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest complete checkpoint under ``root``, or None."""
    candidates = sorted(p for p in root.glob("step-*") if (p / "state.json").is_file()) if root.is_dir() else []
    if not candidates:
        return None
    path = candidates[-1]
    state = json.loads((path / "state.json").read_text())
    optimizer: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(path / "optimizer.safetensors").items():
        name, _, field = key.rpartition(_SEP)
        optimizer.setdefault(name, {})[field] = tensor
    return Checkpoint(
        step=int(state.pop("step")), trainable=load_file(path / "trainable.safetensors"), optimizer=optimizer,
        rng=load_file(path / "rng.safetensors"), state=state,
    )


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
