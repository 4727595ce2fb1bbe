"""`--batch-size auto`: the largest batch that fits, found once per (model, device, dtype, length) and cached.

On CUDA the batch is *measured*: a forward pass of the real shape (``batch x max_length`` tokens, KV cache on) is run
at 1, 2, 4 ... sequences until ``torch.cuda.OutOfMemoryError``; the last size that ran is kept (the largest power of
two that fits, or the cap). A power of two below the edge leaves the allocator room for fragmentation, and the probe
is conservative for generation: its prefill covers the whole length, where a real prompt is shorter.

On the CPU nothing is probed (running out of memory there means swapping, not an exception). The batch is computed
from the memory the OS reports as available and the KV cache one sequence needs at the given length,
``layers x 2 (K and V) x kv heads x head dim x length x dtype bytes``: half the available memory divided by that
(the other half is left for activations, logits and everything else), capped and never below 1.

Results are cached in ``cache_dir()/batch-size.json`` (delete it, or pass ``refresh=True``, after freeing memory).
Lengths are rounded up to a power of two first, so a run's many prompt lengths share a few probes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

from safepeft.models.fingerprint import cache_dir
from safepeft.store.atomic import atomic_write_json

BatchSize: TypeAlias = int | Literal["auto"]
"""What `--batch-size` accepts: a positive int, or ``"auto"``."""

AUTO: Literal["auto"] = "auto"
DEFAULT_CAP = 256
"""Largest batch ``auto`` picks: beyond it the GPU is saturated and a chunk takes long to commit."""
CPU_MEMORY_SHARE = 0.5
"""Share of the available CPU memory the KV caches of one batch may use."""
CACHE_FILE = "batch-size.json"
MIN_LENGTH = 64


def parse_batch_size(value: str | int) -> BatchSize:
    """``"auto"`` or a positive int (from a CLI string or a config value); ValueError with the fix otherwise."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    number = 0
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer or 'auto', got {value!r}.")
    return number


def chunk_size(requested: BatchSize, cap: int = DEFAULT_CAP) -> int:
    """How many requests a caller should hand a generator at once: the batch, or for ``auto`` the cap (the generator
    splits a chunk into the batches that fit)."""
    return cap if requested == AUTO else int(requested)


def resolve_batch_size(requested: BatchSize, loaded: Any, *, max_length: int, cap: int = DEFAULT_CAP,
                       refresh: bool = False) -> int:
    """The batch size to use for sequences of up to ``max_length`` tokens (prompt + generated) on ``loaded``.

    ``loaded`` is a ``LoadedModel`` (``model``, ``fingerprint``, ``adapter_fingerprint``, ``device``, ``dtype``). An
    int ``requested`` is returned as is; ``"auto"`` is answered from the cache or found as the module docstring says.
    """
    parsed = parse_batch_size(requested)
    if isinstance(parsed, int):
        return parsed
    length = length_bucket(max_length)
    device = str(loaded.device)
    key = "|".join([str(loaded.fingerprint), str(getattr(loaded, "adapter_fingerprint", None) or "-"),
                    device_key(device), str(loaded.dtype), str(length)])
    cache = _read_cache()
    if not refresh and isinstance(cache.get(key), int) and cache[key] >= 1:
        return min(cache[key], cap)
    if device.startswith("cuda"):
        size = probe_cuda(lambda batch: _forward(loaded.model, batch, length, device), cap)
    else:
        per_sequence = kv_cache_bytes(loaded.model.config, length, _dtype_bytes(loaded.dtype))
        size = estimate_cpu(per_sequence, available_memory(), cap)
    cache[key] = size
    try:
        atomic_write_json(cache_dir() / CACHE_FILE, cache)
    except OSError:
        pass  # a read-only cache only costs a new probe next time
    return size


def kv_cache_bytes(config: Any, length: int, dtype_bytes: int) -> int:
    """KV-cache bytes of one sequence of ``length`` tokens: layers x 2 x kv heads x head dim x length x bytes."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return int(config.num_hidden_layers) * 2 * kv_heads * head_dim * length * dtype_bytes


def estimate_cpu(per_sequence: int, available: int, cap: int = DEFAULT_CAP) -> int:
    """Sequences whose KV caches fit in ``CPU_MEMORY_SHARE`` of ``available`` bytes, in [1, cap]."""
    fits = int(available * CPU_MEMORY_SHARE) // max(1, per_sequence)
    return max(1, min(cap, fits))


def probe_cuda(run: Callable[[int], None], cap: int = DEFAULT_CAP) -> int:
    """Double the batch from 1 until ``run(batch)`` raises ``torch.cuda.OutOfMemoryError`` or the cap is reached; the
    largest batch that ran (1 when even 1 does not: the real run then fails with the OOM itself)."""
    import torch

    best, batch = 1, 1
    while True:
        try:
            run(batch)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()  # the probe's tensors must not count against the real run
        best = batch
        if batch >= cap:
            break
        batch = min(batch * 2, cap)
    return best


def available_memory() -> int:
    """Bytes of memory the OS can give this process now (psutil when installed, else /proc/meminfo)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def device_key(device: str) -> str:
    """The device as the cache should know it: a GPU's name and memory (``cuda:0`` differs between machines), the
    CPU's total memory."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return f"{device}:{props.name}:{props.total_memory}"
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 0
    return f"{device}:{total}"


def _forward(model: Any, batch: int, length: int, device: str) -> None:
    import torch

    with torch.inference_mode():
        ids = torch.zeros((batch, length), dtype=torch.long, device=device)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        del out, ids


def _dtype_bytes(dtype: str) -> int:
    import torch

    value = getattr(torch, str(dtype).replace("torch.", ""), None)
    # Integer weights (int8 dynamic quantization) still keep an fp32 KV cache.
    return value.itemsize if isinstance(value, torch.dtype) and value.is_floating_point else 4


def length_bucket(length: int) -> int:
    """``length`` rounded up to a power of two (at least MIN_LENGTH)."""
    size = MIN_LENGTH
    while size < length:
        size *= 2
    return size


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
