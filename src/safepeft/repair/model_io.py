"""Write a whole model directory one tensor at a time: the output side of the repairs that edit weights.

RESTA, LoX and Safe Delta produce full weights (θ_aligned + edits). `write_model` streams every tensor of the aligned
model through an edit function straight into safetensors shard files (`StreamingSafetensors`), so memory holds the
tensor being edited, never a shard or the model. Non-finite results are an error (nothing is written: the output is
built in a temporary directory by `store.atomic.atomic_dir`). config.json, the tokenizer and the chat template are
copied from the aligned model's directory, so the result loads with `load_model(out)` like the aligned model.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from safepeft.errors import ConfigError
from safepeft.models.weights import WeightSource
from safepeft.progress import bar
from safepeft.store.atomic import atomic_dir

CHUNK_ROWS = 256
"""Rows per block of the chunked norms and finiteness checks."""
SHARD_BYTES = 4 * 1024**3
"""Upper bound of one output shard (estimated at 4 bytes per value before the dtypes are known)."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
SKIP_FILES = {"model.safetensors.index.json", ".complete", "source.json"}
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}

Edit = Callable[[str, torch.Tensor], torch.Tensor | None]
"""(name, aligned tensor) -> the new tensor, or None to keep the aligned one unchanged."""


def weight_names(source: WeightSource) -> list[str]:
    """Every tensor name of a source, sorted."""
    return list(source.keys())  # type: ignore[attr-defined]


def source_directory(source: WeightSource) -> Path | None:
    """The directory holding a streamed model's files (None for in-memory weights)."""
    files = getattr(source, "_files", None)  # WeightReader: tensor name -> safetensors file
    return Path(next(iter(files.values()))).parent if files else None


def check_finite(name: str, tensor: torch.Tensor, what: str) -> None:
    """Non-finite weights are never a result."""
    if not tensor.is_floating_point():
        return
    rows = tensor.reshape(tensor.shape[0], -1) if tensor.dim() else tensor.reshape(1, 1)
    # Row blocks: a whole-tensor isfinite allocates ~2 tensor-sized temporaries (and is slower out of cache).
    if not all(bool(torch.isfinite(rows[i:i + CHUNK_ROWS]).all()) for i in range(0, rows.shape[0], CHUNK_ROWS)):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ConfigError(f"{what} makes {bad} of {tensor.numel()} values of {name} non-finite (inf/NaN in "
                          f"{str(tensor.dtype).replace('torch.', '')}); nothing was written.",
                          "Use a smaller coefficient, or check the input models for non-finite weights.")


class StreamingSafetensors:
    """Write one .safetensors file tensor by tensor: memory holds one tensor, never the shard.

    The format is an 8-byte header length, a JSON header (dtype, shape, data_offsets per tensor) and the raw bytes.
    The dtypes are known only as tensors arrive, so the header's space is reserved from the names and shapes with
    the longest dtype and offset spellings, and the real header (space-padded, as the format allows) is written over
    it at the end.
    """

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
        self.path, self.shapes, self.entries = path, shapes, {}
        bound = str(8 * sum(math.prod(s) for s in shapes.values()))
        placeholder = {n: {"dtype": "F8_E4M3", "shape": list(s), "data_offsets": [int(bound), int(bound)]}
                       for n, s in shapes.items()}
        placeholder["__metadata__"] = {"format": "pt"}
        self.reserved = (len(json.dumps(placeholder, separators=(",", ":")).encode()) + 7) // 8 * 8
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.handle.write(self.reserved.to_bytes(8, "little") + b" " * self.reserved)
        self.offset = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        tensor = tensor.detach().contiguous().cpu()
        if tuple(tensor.shape) != tuple(self.shapes[name]) or tensor.dtype not in _DTYPES:
            raise ValueError(f"{name}: unexpected shape {tuple(tensor.shape)} or dtype {tensor.dtype}")
        data = tensor.view(torch.uint8).numpy().reshape(-1) if tensor.numel() else b""
        self.handle.write(memoryview(data) if tensor.numel() else b"")
        size = tensor.numel() * tensor.element_size()
        self.entries[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                              "data_offsets": [self.offset, self.offset + size]}
        self.offset += size

    def close(self) -> None:
        header = json.dumps({**self.entries, "__metadata__": {"format": "pt"}}, separators=(",", ":")).encode()
        self.handle.seek(8)
        self.handle.write(header + b" " * (self.reserved - len(header)))
        self.handle.close()


def write_model(out: Path, aligned: WeightSource, edit: Edit, what: str, record_name: str,
                record: Callable[[dict[str, Any]], str], progress: bool = True,
                names: Iterable[str] | None = None) -> dict[str, Any]:
    """Stream `aligned` through `edit` into `out` (atomic). `record(stats)` renders the JSON record written last,
    inside the same temporary directory. Returns stats {tensors, edited, bytes, shards}."""
    names = list(names) if names is not None else weight_names(aligned)
    shapes = {name: tuple(aligned.shape(name)) for name in names}
    shards = _plan_shards(names, shapes)
    directory = source_directory(aligned)
    stats = {"tensors": len(names), "edited": 0, "bytes": 0, "shards": len(shards)}
    with atomic_dir(out) as tmp:
        weight_map = {}
        with bar(f"writing {out.name}", len(names), progress) as advance:
            for file, members in shards.items():
                writer = StreamingSafetensors(tmp / file, {n: shapes[n] for n in members})
                try:
                    for name in members:
                        original = aligned.get(name)
                        new = edit(name, original)
                        if new is None:
                            new = original
                        else:
                            new = new.to(original.dtype)
                            check_finite(name, new, what)
                            stats["edited"] += 1
                        writer.add(name, new)
                        stats["bytes"] += new.numel() * new.element_size()
                        weight_map[name] = file
                        del new, original
                        advance()
                finally:
                    writer.close()
        if len(shards) > 1:
            (tmp / "model.safetensors.index.json").write_text(json.dumps(
                {"metadata": {"total_size": stats["bytes"]}, "weight_map": weight_map}, indent=2), encoding="utf-8")
        if directory is not None:
            for item in directory.iterdir():
                if item.is_file() and item.name not in SKIP_FILES and not item.name.endswith(WEIGHT_SUFFIXES):
                    shutil.copy2(item, tmp / item.name)
        (tmp / record_name).write_text(record(stats) + "\n", encoding="utf-8")
    return stats


def _plan_shards(names: list[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, list[str]]:
    """HF names: model.safetensors, or model-0000i-of-0000n.safetensors at SHARD_BYTES (4 bytes per value)."""
    groups: list[list[str]] = [[]]
    size = 0
    for name in names:
        estimate = 4 * math.prod(shapes[name])
        if groups[-1] and size + estimate > SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += estimate
    if len(groups) == 1:
        return {"model.safetensors": groups[0]}
    return {f"model-{i:05d}-of-{len(groups):05d}.safetensors": g for i, g in enumerate(groups, start=1)}


def pair_weights(base: WeightSource, aligned: WeightSource, base_name: str, aligned_name: str) -> dict[str, str]:
    """aligned tensor name -> base key, for every floating tensor of the aligned model; shapes must agree."""
    from safepeft.errors import IncompatibleArtifactError

    pairs = {}
    for name in weight_names(aligned):
        key = base.find(name)
        if key is None:
            raise IncompatibleArtifactError(
                f"The aligned model's weight {name!r} has no counterpart in the base {base_name}.",
                "Base and aligned model must share one architecture (e.g. Llama-2-7b-hf and Llama-2-7b-chat).")
        if tuple(base.shape(key)) != tuple(aligned.shape(name)):
            raise IncompatibleArtifactError(
                f"Shape mismatch for {name}: base {tuple(base.shape(key))} vs aligned {tuple(aligned.shape(name))}.",
                "Base and aligned model must share one architecture (e.g. Llama-2-7b-hf and Llama-2-7b-chat).")
        pairs[name] = key
    return pairs


LINEAGE_SAMPLE = 8
"""Weight matrices (evenly spaced through the model) the lineage check measures before anything is written."""
def frobenius_sq(a: torch.Tensor, b: torch.Tensor | None = None, left: torch.Tensor | None = None,
                 right: torch.Tensor | None = None) -> float:
    """‖a − b − left·right‖_F² (the optional terms default to 0) in row blocks with float64 sums: no d_out×d_in
    temporaries, so a norm never costs more memory than a few rows."""
    total = 0.0
    for start in range(0, a.shape[0], CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        block = a[rows].float()
        if b is not None:
            block = block - b[rows].float()
        if left is not None:
            block = block - left[rows] @ right
        flat = block.reshape(-1)
        total += float(torch.dot(flat, flat).double())
    return total


def relative_changes(base: WeightSource, aligned: WeightSource, pairs: dict[str, str],
                     sample: int | None = LINEAGE_SAMPLE) -> dict[str, tuple[float, float]]:
    """name -> (‖W_aligned − W_base‖_F, ‖W_base‖_F) for 2-D floating weights: `sample` of them evenly spaced
    (None: all), one pair at a time."""
    names = [n for n in pairs if len(aligned.shape(n)) == 2]
    if sample is not None and len(names) > sample:
        names = [names[round(i * (len(names) - 1) / (sample - 1))] for i in range(sample)]
    changes = {}
    for name in names:
        w_base = base.get(pairs[name])
        if not w_base.is_floating_point():
            continue
        w_aligned = aligned.get(name)
        changes[name] = (frobenius_sq(w_aligned, w_base) ** 0.5, frobenius_sq(w_base) ** 0.5)
    return changes


def lora_deltas(adapter: Any, aligned: WeightSource) -> dict[str, Any]:
    """aligned weight key -> the adapter module (LoraModule) that updates it; shapes checked against the model."""
    from safepeft.errors import IncompatibleArtifactError

    found = {}
    for name, module in adapter.modules.items():
        key = aligned.find(module.weight_name)
        if key is None:
            raise IncompatibleArtifactError(
                f"The adapter module {name!r} has no weight in the aligned model (looked for {module.weight_name!r}).",
                "The adapter must have been trained on the aligned model (same architecture and module names).")
        shape = tuple(aligned.shape(key))
        expected = (int(adapter.b(name).shape[0]), int(adapter.a(name).shape[1]))
        if (tuple(reversed(shape)) if module.fan_in_fan_out else shape) != expected:
            raise IncompatibleArtifactError(
                f"The adapter's update for {name} has shape {expected} but the aligned weight is {shape}.",
                "The adapter was trained on a different architecture than the aligned model.")
        found[key] = module
    return found


def dense_delta(adapter: Any, module: Any, device: Any = None) -> torch.Tensor:
    """ΔW = scaling·B·A in fp32 on `device` (default: the adapter's), laid out like the stored weight (transposed
    for fan_in_fan_out)."""
    b, a = adapter.b(module.name).to(device), adapter.a(module.name).to(device)
    delta = module.scaling * (b.float() @ a.float())  # (d_out, d_in)
    return delta.T if module.fan_in_fan_out else delta


def add_lora_delta_(out: torch.Tensor, adapter: Any, module: Any) -> torch.Tensor:
    """out += scaling·B·A in place (fp32 out, laid out like the stored weight), without forming ΔW separately."""
    b = module.scaling * adapter.b(module.name).to(out.device).float()
    a = adapter.a(module.name).to(out.device).float()
    if module.fan_in_fan_out:
        return out.addmm_(a.T, b.T)  # out is (d_in, d_out)
    return out.addmm_(b, a)
