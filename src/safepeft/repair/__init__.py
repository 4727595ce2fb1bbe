"""Post-hoc repair against an aligned reference: SafeLoRA, SPLoRA, RESTA, SafeMERGE, Safe Delta; LoX hardening.

Entries are lazy, so importing this package (e.g. for `safepeft list repairs`) does not import torch.
"""

from __future__ import annotations

from typing import Any

from safepeft.registry import Registry

REPAIR_METHODS: Registry[Any] = Registry("repair method", "safepeft list repairs")
REPAIR_METHODS.register("safelora", "safepeft.repair.safelora:SafeLoRA")
REPAIR_METHODS.register("splora", "safepeft.repair.splora:SPLoRA")
REPAIR_METHODS.register("resta", "safepeft.repair.resta:RESTA")
REPAIR_METHODS.register("safemerge", "safepeft.repair.safemerge:SafeMERGE")
REPAIR_METHODS.register("safedelta", "safepeft.repair.safedelta:SafeDelta")

HARDEN_METHODS: Registry[Any] = Registry("hardener", "safepeft list hardeners")
"""Training-free hardening of an aligned model before fine-tuning (its output is a model `train` starts from)."""
HARDEN_METHODS.register("lox", "safepeft.repair.lox:LoX")


def repair_adapter(method: str, **kwargs: Any) -> Any:
    """See :func:`safepeft.repair.run.repair_adapter`."""
    from safepeft.repair.run import repair_adapter as _repair

    return _repair(method, **kwargs)


def harden_model(method: str, **kwargs: Any) -> Any:
    """Run the registered hardening `method` (see :func:`safepeft.repair.lox.harden_lox`)."""
    return HARDEN_METHODS.get(method).harden(**kwargs)


__all__ = ["HARDEN_METHODS", "REPAIR_METHODS", "harden_model", "repair_adapter"]
