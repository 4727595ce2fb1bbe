"""Post-hoc adapter repair: SafeLoRA projection and SPLoRA pruning against an aligned reference model.

Entries are lazy, so importing this package (e.g. for `safepeft list repairs`) does not import torch.
"""

from __future__ import annotations

from typing import Any

from safepeft.registry import Registry

REPAIR_METHODS: Registry[Any] = Registry("repair method", "safepeft list repairs")
REPAIR_METHODS.register("safelora", "safepeft.repair.safelora:SafeLoRA")
REPAIR_METHODS.register("splora", "safepeft.repair.splora:SPLoRA")


def repair_adapter(method: str, **kwargs: Any) -> Any:
    """See :func:`safepeft.repair.run.repair_adapter`."""
    from safepeft.repair.run import repair_adapter as _repair

    return _repair(method, **kwargs)


__all__ = ["REPAIR_METHODS", "repair_adapter"]
