"""Models: load any supported model (+ adapter), fingerprint it, and drive it through the Generator protocol.

Heavy imports (torch, transformers) happen on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any

from safepeft.models.protocol import Generator
from safepeft.models.spec import EMBEDDED_ALIASES, ModelSource, resolve

__all__ = ["EMBEDDED_ALIASES", "Generator", "ModelSource", "load_model", "resolve"]


def load_model(spec: str, **kwargs: Any) -> Any:
    """See :func:`safepeft.models.loader.load_model`."""
    from safepeft.models.loader import load_model as _load

    return _load(spec, **kwargs)
