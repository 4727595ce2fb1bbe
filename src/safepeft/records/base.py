"""Shared pydantic base: unknown keys are rejected and each field is documented by its docstring."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base for configs a user writes or a record stores: strict, immutable, self-documenting."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Record(BaseModel):
    """Base for records written to disk: strict but mutable while a stage fills them in."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
