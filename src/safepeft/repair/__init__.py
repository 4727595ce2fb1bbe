"""Post-hoc repair against an aligned reference: SafeLoRA, SPLoRA, RESTA, SafeMERGE, Safe Delta; LoX hardening.

Entries are lazy, so importing this package (e.g. for `safepeft list repairs`) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safepeft.registry import Registry

if TYPE_CHECKING:  # the bases are named lazily below: importing them here would import torch
    from safepeft.repair.base import RepairInfo

REPAIR_METHODS: Registry[type[RepairInfo]] = Registry("repair method", "safepeft list repairs",
                                                      base="safepeft.repair.base:RepairInfo")
REPAIR_METHODS.register("safelora", "safepeft.repair.safelora:SafeLoRA")
REPAIR_METHODS.register("splora", "safepeft.repair.splora:SPLoRA")
REPAIR_METHODS.register("resta", "safepeft.repair.resta:RESTA")
REPAIR_METHODS.register("safemerge", "safepeft.repair.safemerge:SafeMERGE")
REPAIR_METHODS.register("safedelta", "safepeft.repair.safedelta:SafeDelta")

HARDEN_METHODS: Registry[Any] = Registry("hardener", "safepeft list hardeners")
"""Training-free hardening of an aligned model before fine-tuning (its output is a model `train` starts from).
Unchecked: LoX is the only hardener, so there is no common base to check yet (it follows the same conventions:
``name``, ``paper``, ``spec_class``)."""
HARDEN_METHODS.register("lox", "safepeft.repair.lox:LoX")


def repair_adapter(method: str, **kwargs: Any) -> Any:
    """See :func:`safepeft.repair.run.repair_adapter`."""
    from safepeft.repair.run import repair_adapter as _repair

    return _repair(method, **kwargs)


def harden_model(method: str, **kwargs: Any) -> Any:
    """Run the registered hardening `method` (see :func:`safepeft.repair.lox.harden_lox`)."""
    return HARDEN_METHODS.get(method).harden(**kwargs)


__all__ = ["HARDEN_METHODS", "REPAIR_METHODS", "harden_model", "repair_adapter"]
