"""Many adapters, one base: audit N adapters of one model with one copy of its weights in memory.

``AdapterPool`` keeps the last base model loaded and attaches adapters to it by name with PEFT's multi-adapter API
(``PeftModel.load_adapter`` + ``set_adapter``); switching adapters then costs an adapter's weights, not a model load.
Adapters of another PEFT type (e.g. prompt tuning after LoRA) cannot share a PeftModel, so the wrapper is taken off
(``unload()`` restores the original modules, no merge) and a new one put on the same in-memory base: the base is
still never re-read. The generators it returns activate their own adapter before every call, so interleaved use is
correct, and carry the adapter's fingerprint in their identity, so the run store never mixes their outputs.

Each process has one pool (``safepeft.target.shared_models().pool``): the local executor runs all audits in one
process, and a Ray worker reuses its pool across the tasks it is given. ``safepeft audit`` uses a pool too
(``safepeft.target``), so `audit --adapter A --adapter B` reads the base once, exactly as a study does.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from safepeft.errors import ModelLoadError
from safepeft.models.fingerprint import directory_fingerprint
from safepeft.models.loader import adapter_mismatch
from safepeft.models.safety import check_adapter_dir
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt

_PROMPT_LEARNING = {"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "CPT"}


class AdapterPool:
    """One base model in memory, any number of adapters attached to it by name."""

    def __init__(self, dtype: str = "auto", device: str = "auto") -> None:
        self.dtype = dtype
        self.device = device
        self.base_loads = 0
        """How many times a base model was read from disk (tests and benchmarks check it)."""
        self._key: tuple[Any, ...] | None = None
        self._loaded: Any = None  # LoadedModel of the bare base
        self._peft: Any = None  # PeftModel around it, once an adapter was asked for
        self._peft_type: str | None = None
        self._names: dict[str, str] = {}  # adapter fingerprint -> adapter name inside the PeftModel

    def generator(self, model: str, adapter: str | Path | None = None, batch_size: int = 16, *,
                  chat_template: str | None = None, trust_remote_code: bool = False,
                  progress: bool = True) -> AdapterGenerator:
        """A Generator for ``model`` (+ ``adapter``) sharing this pool's base weights."""
        self._base(model, chat_template, trust_remote_code)
        if adapter is None:
            return AdapterGenerator(self, None, self._loaded, batch_size, progress)
        path = Path(adapter)
        config = path / "adapter_config.json"
        check_adapter_dir(path)
        fingerprint = directory_fingerprint(path)
        peft_type = str(json.loads(config.read_text(encoding="utf-8")).get("peft_type", "")).upper()
        name = self._attach(path, fingerprint, peft_type)
        view = replace(self._loaded, model=self._peft, adapter_path=str(path), adapter_fingerprint=fingerprint)
        return AdapterGenerator(self, name, view, batch_size, progress)

    def release(self) -> None:
        """Drop the base and its adapters from memory; the next generator() reads the base from disk again."""
        self._key = self._loaded = self._peft = self._peft_type = None
        self._names = {}
        gc.collect()

    def _base(self, model: str, chat_template: str | None, trust_remote_code: bool) -> None:
        key = (model, self.dtype, self.device, chat_template, trust_remote_code)
        if key == self._key:
            return
        from safepeft.models.loader import load_model

        self.release()  # free the previous base before loading the next
        self._loaded = load_model(model, dtype=self.dtype, device=self.device, chat_template=chat_template,
                                  trust_remote_code=trust_remote_code)
        self._key = key
        self.base_loads += 1

    def _attach(self, path: Path, fingerprint: str, peft_type: str) -> str:
        if fingerprint in self._names and self._peft_type == peft_type:
            return self._names[fingerprint]
        from peft import PeftModel

        name = f"adapter_{fingerprint}"
        try:
            if self._peft is not None and self._peft_type == peft_type:
                self._peft.load_adapter(str(path), adapter_name=name)
            else:
                self._detach()
                self._peft = PeftModel.from_pretrained(self._loaded.model, str(path), adapter_name=name)
                self._peft_type = peft_type
        except (RuntimeError, ValueError, KeyError) as exc:
            raise adapter_mismatch(path, self._loaded.spec, exc) from exc
        self._peft.eval()
        self._names[fingerprint] = name
        return name

    def _detach(self) -> None:
        """Take the PeftModel off the base without touching base weights (no merge)."""
        if self._peft is None:
            return
        if self._peft_type in _PROMPT_LEARNING:
            self._loaded.model = self._peft.get_base_model()
        else:
            self._loaded.model = self._peft.unload()
        self._peft, self._names = None, {}

    @contextlib.contextmanager
    def active(self, name: str | None):
        """Run with adapter ``name`` active (None: the bare base, adapters disabled)."""
        if self._peft is None:
            yield
        elif name is None:
            with self._peft.disable_adapter():
                yield
        else:
            if name not in self._names.values():
                raise ModelLoadError(f"Adapter {name} was detached from the shared base.",
                                     "Ask the pool for a new generator.")
            self._peft.set_adapter(name)
            yield


class AdapterGenerator:
    """Generator over the pool's shared base with one adapter (or none) active during each call."""

    def __init__(self, pool: AdapterPool, name: str | None, view: Any, batch_size: int,
                 progress: bool = True) -> None:
        from safepeft.models.hf import HFGenerator

        self.pool = pool
        self.name = name
        self.loaded = view
        self._inner = HFGenerator(view, batch_size=batch_size, progress=progress)

    def identity(self) -> dict[str, Any]:
        return self._inner.identity()

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        with self.pool.active(self.name):
            self._inner.model = self.pool._peft if self.name else self._current_base()
            return self._inner.generate(prompts, params)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        with self.pool.active(self.name):
            self._inner.model = self.pool._peft if self.name else self._current_base()
            return self._inner.loglikelihood(requests)

    def render(self, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
        return self._inner.render(prompt, system_prompt, chat)

    def _current_base(self) -> Any:
        """The bare base: through the PeftModel with adapters disabled when one is attached."""
        return self.pool._peft if self.pool._peft is not None else self.pool._loaded.model
