"""Stream base and aligned weights module by module and measure every adapter module against V = W_aligned − W_base.

Weights are matched to adapter modules by NAME. All names are checked before any arithmetic, so a wrong model pair
fails in a second, not after an hour. Only one module's two weight matrices (plus V) are alive at a time: peak memory
scales with the largest adapted module, not with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safepeft.errors import IncompatibleArtifactError
from safepeft.models.weights import WeightSource
from safepeft.progress import bar
from safepeft.repair.adapter import LoraAdapter, LoraModule
from safepeft.repair.projection import ModuleGeometry, module_geometry


@dataclass
class ModuleAlignment:
    """One adapter module measured against the alignment direction of its layer."""

    module: LoraModule
    shape: tuple[int, int]
    """(d_out, d_in) of the layer's weight."""
    geometry: ModuleGeometry

    @property
    def name(self) -> str:
        return self.module.name

    @property
    def skip_reason(self) -> str | None:
        if self.geometry.v_norm == 0.0:
            return "aligned and base weights are identical for this layer (V = 0): no alignment direction"
        if self.geometry.cosine is None:
            return "the adapter's update is zero (B·A = 0): nothing to repair"
        return None


def measure_modules(
    adapter: LoraAdapter, base: WeightSource, aligned: WeightSource, progress: bool = True
) -> list[ModuleAlignment]:
    """Measure every adapter module (sorted by name). Raises on missing weights or shape mismatches."""
    keys = {name: _weight_keys(module, adapter, base, aligned) for name, module in adapter.modules.items()}
    results = []
    scratch: list[torch.Tensor] = []  # one flat fp32 buffer for V, as large as the largest module, reused
    with bar("measuring modules", len(keys), progress) as advance:
        for name, (base_key, aligned_key) in keys.items():
            module = adapter.modules[name]
            v = _alignment_delta(module, aligned.get(aligned_key), base.get(base_key), scratch)  # (d_out, d_in)
            geometry = module_geometry(v, adapter.b(name).to(v.device), adapter.a(name).to(v.device))
            geometry.cb = geometry.cb.cpu()  # plans run on the CPU; the device keeps one module at a time
            results.append(ModuleAlignment(module, (int(v.shape[0]), int(v.shape[1])), geometry))
            advance()
    if results and all(r.geometry.v_norm == 0.0 for r in results):
        raise IncompatibleArtifactError(
            "The base and aligned models have identical weights on every adapted module.",
            "Pass the unaligned base as --base and the safety-aligned model (e.g. `safepeft align`) as --aligned.",
        )
    return results


def _weight_keys(module: LoraModule, adapter: LoraAdapter, base: WeightSource,
                 aligned: WeightSource) -> tuple[str, str]:
    """Resolve the layer's weight in both models and check the shapes agree with each other and the adapter."""
    found = {}
    for role, source in (("base", base), ("aligned", aligned)):
        key = source.find(module.weight_name)
        if key is None:
            raise IncompatibleArtifactError(
                f"The adapter module {module.name!r} has no weight in the {role} model "
                f"({getattr(source, 'description', role)}; looked for {module.weight_name!r}).",
                "Base, aligned model and adapter must share one architecture and module names.",
            )
        found[role] = key
    base_shape, aligned_shape = base.shape(found["base"]), aligned.shape(found["aligned"])
    if base_shape != aligned_shape:
        raise IncompatibleArtifactError(
            f"Shape mismatch for {module.weight_name}: base {base_shape} vs aligned {aligned_shape}.",
            "The base and aligned models must have the same architecture (e.g. Llama-2-7b and Llama-2-7b-chat).",
        )
    shape = tuple(reversed(base_shape)) if module.fan_in_fan_out else base_shape
    b, a = adapter.b(module.name), adapter.a(module.name)
    expected = (int(b.shape[0]), int(a.shape[1]))
    if len(shape) != 2 or tuple(shape) != expected:
        raise IncompatibleArtifactError(
            f"The adapter's update for {module.name} has shape {expected} but the models' weight is {tuple(shape)}.",
            "The adapter was trained on a different architecture than the base/aligned pair.",
        )
    return found["base"], found["aligned"]


def _alignment_delta(module: LoraModule, aligned: torch.Tensor, base: torch.Tensor,
                     scratch: list[torch.Tensor]) -> torch.Tensor:
    """V = W_aligned − W_base in fp32 (never in the checkpoint's low precision), oriented (d_out, d_in) like B·A
    (Conv1D-style fan_in_fan_out weights are transposed). Written into a reused buffer: no per-module allocation."""
    if not scratch or scratch[0].numel() < aligned.numel() or scratch[0].device != aligned.device:
        # on the weights' device: a stream read onto a GPU is subtracted there, not copied back
        scratch[:] = [torch.empty(aligned.numel(), dtype=torch.float32, device=aligned.device)]
    v = scratch[0][: aligned.numel()].view(aligned.shape)
    if aligned.dtype == torch.float32 and base.dtype == torch.float32:
        torch.sub(aligned, base, out=v)
    else:
        v.copy_(aligned).sub_(base)  # upcast exactly, then subtract in fp32
    return v.T if module.fan_in_fan_out else v
