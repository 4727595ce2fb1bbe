"""Stream single weight tensors from a model's safetensors files, without loading the model.

`open_weights(spec)` accepts every model spec `load_model` does (`embedded`, a .gguf file, an HF directory, a hub id)
and returns a `WeightReader` whose `get(name)` reads one tensor through `safetensors.safe_open` (memory-mapped), so
repair methods hold one module's weights at a time instead of two full models. GGUF sources use the loader's cached
safetensors conversion; hub ids use the local HF cache (downloaded only when online). Pickled `.bin` weights are
refused (loading pickles can run code).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from safepeft.errors import IncompatibleArtifactError, ModelLoadError
from safepeft.models import fingerprint as fp
from safepeft.models.safety import check_finite, require_safetensors
from safepeft.models.spec import ModelSource, resolve

INDEX_FILE = "model.safetensors.index.json"


class WeightSource(Protocol):
    """What repair code needs from a model's weights: names, shapes and one tensor at a time."""

    def __contains__(self, name: object) -> bool: ...

    def shape(self, name: str) -> tuple[int, ...]: ...

    def get(self, name: str) -> Any: ...

    def find(self, module_weight_name: str) -> str | None: ...


class _Lookup:
    """Name resolution shared by all sources: exact key, else the unique key ending in `.NAME`."""

    description = "model"

    def keys(self) -> list[str]:
        raise NotImplementedError

    def __contains__(self, name: object) -> bool:
        raise NotImplementedError

    def find(self, module_weight_name: str) -> str | None:
        """The stored key for a weight, tolerating a different top-level prefix (e.g. `model.` or none)."""
        if module_weight_name in self:
            return module_weight_name
        suffix = "." + module_weight_name
        # Either side may carry the extra prefix (e.g. a bare LlamaModel checkpoint has no `model.`).
        hits = [k for k in self.keys() if k.endswith(suffix) or module_weight_name.endswith("." + k)]
        return hits[0] if len(hits) == 1 else None

    def missing(self, name: str) -> IncompatibleArtifactError:
        close = difflib.get_close_matches(name, self.keys(), n=3, cutoff=0.6)
        hint = f" Closest: {', '.join(close)}." if close else ""
        return IncompatibleArtifactError(
            f"The weight {name!r} is not in {self.description}.{hint}",
            "Both models must have the architecture the adapter was trained on.",
        )


class WeightReader(_Lookup):
    """Lazy reader over one or more safetensors files; use as a context manager (or call close())."""

    def __init__(self, files: Mapping[str, Path], description: str, fingerprint: str) -> None:
        self._files = dict(files)  # tensor name -> file holding it
        self._handles: dict[Path, Any] = {}
        self._stack = ExitStack()
        self.description = description
        self.fingerprint = fingerprint

    def keys(self) -> list[str]:
        return sorted(self._files)

    def __contains__(self, name: object) -> bool:
        return name in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def _handle(self, name: str) -> Any:
        from safetensors import safe_open

        if name not in self._files:
            raise self.missing(name)
        path = self._files[name]
        if path not in self._handles:
            self._handles[path] = self._stack.enter_context(safe_open(str(path), framework="pt"))
        return self._handles[path]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(name).get_slice(name).get_shape())

    def get(self, name: str) -> Any:
        """One tensor, in its stored dtype (callers upcast for their math); NaN or Inf is an error."""
        tensor = self._handle(name).get_tensor(name)
        check_finite([(name, tensor)], self.description)
        return tensor

    def close(self) -> None:
        self._stack.close()
        self._handles.clear()

    def __enter__(self) -> WeightReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DictWeights(_Lookup):
    """In-memory weights with the reader interface (tests, benchmarks, already-loaded state dicts)."""

    def __init__(self, tensors: Mapping[str, Any], description: str = "the in-memory weights") -> None:
        self._tensors = dict(tensors)
        self.description = description
        self.fingerprint = None

    def keys(self) -> list[str]:
        return sorted(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self._tensors:
            raise self.missing(name)
        return tuple(self._tensors[name].shape)

    def get(self, name: str) -> Any:
        if name not in self._tensors:
            raise self.missing(name)
        return self._tensors[name]


class OnDevice:
    """A WeightSource whose `get` returns each tensor on `device`; names, shapes, files and fingerprint are the
    wrapped source's. Repairs read one module at a time through it, so the device holds one module, not the model."""

    def __init__(self, source: Any, device: str) -> None:
        self.source, self.device = source, device

    def get(self, name: str) -> Any:
        return self.source.get(name).to(self.device)  # a no-op (the same tensor) when it is already there

    def __contains__(self, name: object) -> bool:
        return name in self.source

    def __getattr__(self, attr: str) -> Any:  # keys, shape, find, description, fingerprint, _files
        if attr == "source":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.source, attr)


def resolve_device(device: str) -> str:
    """`auto` -> cuda when torch sees CUDA, else cpu; a named device is checked. The model loader's rule and errors
    (a `cuda` request without CUDA is a one-line ConfigError)."""
    from safepeft.models.loader import pick_device

    return pick_device(device)


def open_weights(spec: str) -> WeightReader:
    """A streaming reader for the weights behind a model spec (see the module docstring)."""
    source = resolve(spec)
    if source.kind == "gguf":
        from safepeft.models.loader import converted_safetensors_dir

        directory, fingerprint = converted_safetensors_dir(source)
    elif source.kind == "dir":
        directory, fingerprint = Path(source.location), fp.directory_fingerprint(source.location)
    else:
        directory, fingerprint = _hub_snapshot(source)
    return WeightReader(safetensors_files(directory, spec), f"model {spec!r}", fingerprint)


def safetensors_files(directory: Path, spec: str) -> dict[str, Path]:
    """Map every tensor name to its file: from the shard index when there is one, else by scanning the files."""
    from safetensors import safe_open

    index = directory / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(f"{index} is not a valid safetensors index ({exc}).",
                                 "Re-download the model.") from exc
        return {name: directory / file for name, file in weight_map.items()}
    require_safetensors(directory, f"model {spec!r} directory")
    files = sorted(directory.glob("*.safetensors"))
    mapping: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            mapping.update({name: file for name in handle.keys()})
    return mapping


def _hub_snapshot(source: ModelSource) -> tuple[Path, str]:
    """Weights + config of a hub model from the local HF cache (fetched only when the network allows)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(source.location, allow_patterns=["*.safetensors", INDEX_FILE, "config.json"])
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not get the weights of {source.spec!r}: {str(exc).splitlines()[0][:200]}",
            "Without network, the model must already be in the local HF cache; or pass a local directory.",
        ) from exc
    commit = Path(path).name  # snapshots/<commit>
    return Path(path), fp.hub_fingerprint(source.location, commit)
