"""Checks every model and adapter passes on the way in and out: safetensors only, finite weights only.

Pickled weights (`.bin`, `.pt`, `.pth`, `.pkl`) are refused before any library can open them: unpickling runs
whatever code the file carries. Non-finite weights (NaN, Inf) are refused wherever weights are loaded or written:
a model full of NaN produces empty text, which an audit must never be able to score as "safe".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from safepeft.errors import NonFiniteWeightsError, PickleRefusedError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
CONVERT_HINT = ("safepeft never loads pickles (they can run code); convert the weights to safetensors: load them "
                "once in a trusted environment and save with save_pretrained(..., safe_serialization=True).")


def pickled_files(directory: str | Path) -> list[str]:
    """Names of pickle-format weight files directly inside ``directory``."""
    path = Path(directory)
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def require_safetensors(directory: str | Path, what: str) -> None:
    """Refuse a model or adapter directory whose weights exist only as pickles (or do not exist at all)."""
    path = Path(directory)
    if any(path.glob("*.safetensors")):
        return
    pickles = pickled_files(path)
    if pickles:
        raise PickleRefusedError(f"The {what} {path} holds only pickled weights ({', '.join(pickles)}).",
                                 CONVERT_HINT)
    present = sorted(p.name for p in path.iterdir())[:6] if path.is_dir() else []
    seen = f" (it holds: {', '.join(present)})" if present else " (it is empty)"
    raise PickleRefusedError(f"The {what} {path} has no .safetensors weights{seen}.",
                             "Point at a directory written by save_pretrained(..., safe_serialization=True).")


def refuse_pickle_path(path: str | Path, what: str) -> None:
    """Refuse a single weights file given by path when it is a pickle."""
    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise PickleRefusedError(f"The {what} {path} is a pickle file.", CONVERT_HINT)


def nonfinite_names(named_tensors: Iterable[tuple[str, Any]]) -> list[str]:
    """Names of floating-point tensors holding any NaN or Inf (checked one tensor at a time)."""
    import torch

    bad = []
    for name, tensor in named_tensors:
        if not (isinstance(tensor, torch.Tensor) and tensor.is_floating_point()):
            continue
        # NaN and Inf propagate through a sum, which costs a tenth of an elementwise isfinite; only a non-finite
        # sum (possibly finite values overflowing) is confirmed element by element.
        if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    return bad


def check_finite(named_tensors: Iterable[tuple[str, Any]], what: str, hint: str | None = None) -> None:
    """Raise NonFiniteWeightsError naming the first bad tensors of ``what``."""
    bad = nonfinite_names(named_tensors)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteWeightsError(
            f"The {what} has non-finite weights (NaN or Inf) in {len(bad)} tensor(s): {shown}.",
            hint or "It is broken (a diverged training run or a corrupt file) and its results would be meaningless; "
            "retrain it or restore a good copy.")


def check_model_finite(model: Any, what: str) -> None:
    """Every floating parameter and buffer of a torch module is finite."""
    check_finite(((n, t.detach()) for n, t in model.named_parameters()), what)
    check_finite(((n, t.detach()) for n, t in model.named_buffers()), what)


def check_adapter_dir(path: str | Path) -> None:
    """A PEFT adapter directory: a config, safetensors weights (never a pickle), every tensor finite.

    Reads one tensor at a time from the safetensors files, so the check costs one pass over the adapter and no
    model; every consumer of adapters (the loader, the study's adapter pool, repairs) runs it before use."""
    from safetensors import safe_open

    from safepeft.errors import ModelLoadError

    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"Adapter directory {path} has no adapter_config.json.",
                             "Pass a directory written by `safepeft train` or PEFT's save_pretrained.")
    require_safetensors(path, "adapter")
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            check_finite(((name, handle.get_tensor(name)) for name in handle.keys()), f"adapter {path}")
