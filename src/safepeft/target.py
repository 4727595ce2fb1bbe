"""The one builder of what an audit scores: target (model -> backend -> guard -> run-store cache), judge, attacks.

`safepeft audit`, `generate`, `judge-eval` and the study's audit step describe what they score with typed specs
(``TargetSpec``, ``JudgeSpec``) and build it here, so a model audited from the command line and from a study gets
the same backend, the same ``ArtifactRef``s and the same cached generations. Nothing else builds targets.

``Models`` holds what one command or study process keeps in memory: the audited base with its adapters (one
``AdapterPool``: N adapters of one base cost one load) and the auxiliary models (judge, guard and attacker
models), each loaded once.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from safepeft.models.backends import BACKENDS, Opened, choose_backend, is_model_dir
from safepeft.models.pool import AdapterPool
from safepeft.models.target_spec import GuardSpec, TargetSpec
from safepeft.records.base import Spec
from safepeft.records.results import ArtifactRef

__all__ = ["GuardSpec", "JudgeSpec", "Models", "Target", "TargetSpec", "build_attacks", "build_judge",
           "build_target", "shared_models"]

AUX_MODELS = 3  # judge, guard and attacker models kept at once; a fourth evicts the least recently used


class JudgeSpec(Spec):
    """The judge of generations."""

    name: str = "classifier"
    """Judge name (`safepeft list judges`)."""
    model: str | None = None
    """Judge model for LLM judges (a local spec, or the endpoint's model with `base_url`); for `classifier`, a
    judge directory from `safepeft judge train` (None: the shipped one)."""
    base_url: str | None = None
    """OpenAI-compatible base URL serving `model`."""
    api_key_env: str | None = None
    """Environment variable holding the API key of `base_url`."""


@dataclass
class Target:
    """A built target: the cached (and guarded) generator, and what results.json records about it."""

    generator: Any
    model: ArtifactRef
    adapter: ArtifactRef | None
    guard: Any = None
    """The guard hook (``GuardFactory``) when the target is guarded; ``guard.ref()`` after the audit."""


class Models:
    """Models kept in memory by one command or study process (see the module docstring)."""

    def __init__(self, dtype: str = "auto", device: str = "auto") -> None:
        self.pool = AdapterPool(dtype, device)
        self._aux: OrderedDict[tuple[Any, ...], AdapterPool] = OrderedDict()

    def pool_for(self, target: TargetSpec) -> AdapterPool:
        """The audited targets' pool when ``target`` loads like them, else a pool of its own (dtype/device)."""
        if (target.dtype, target.device) == (self.pool.dtype, self.pool.device):
            return self.pool
        return self.aux_pool(None, target.dtype, target.device)

    def aux_pool(self, spec: str | None, dtype: str, device: str) -> AdapterPool:
        """The pool of one auxiliary model (judge, guard, attacker), so loading it never evicts the audited base;
        a judge and a guard with the same spec share it."""
        key = (spec, dtype, device)
        if key in self._aux:
            self._aux.move_to_end(key)
        else:
            self._aux[key] = AdapterPool(dtype, device)
            while len(self._aux) > AUX_MODELS:
                self._aux.popitem(last=False)[1].release()
        return self._aux[key]

    def loaded(self, spec: str, like: TargetSpec) -> Any:
        """``spec`` loaded bare (no adapter), once: the model a guard scores with."""
        pool = self.aux_pool(spec, like.dtype, like.device)
        return pool.generator(spec, None, trust_remote_code=like.trust_remote_code).loaded

    def release(self) -> None:
        self.pool.release()
        for pool in self._aux.values():
            pool.release()
        self._aux.clear()


_SHARED: dict[tuple[str, str], Models] = {}


def shared_models(dtype: str = "auto", device: str = "auto") -> Models:
    """This process's models for (dtype, device): study steps run in one process (or Ray worker) share them."""
    return _SHARED.setdefault((dtype, device), Models(dtype, device))


def warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def open_target(target: TargetSpec, models: Models, *, aux: bool = False,
                warn: Callable[[str], None] | None = warn_stderr) -> Opened:
    """The uncached generator of ``target`` on the backend ``choose_backend`` picks (``aux``: a judge's or
    attacker's model, loaded beside the audited base instead of in its place)."""
    if target.adapter is not None and is_model_dir(target.adapter):
        # Weight-writing repairs (RESTA, Safe Delta) output a whole model: it is audited as the model itself.
        target = target.model_copy(update={"model": target.adapter, "adapter": None})
    pool = models.aux_pool(target.model, target.dtype, target.device) if aux else models.pool_for(target)
    return BACKENDS.get(choose_backend(target, warn))(target, pool)


def build_target(target: TargetSpec, store: Any, models: Models, *, progress: bool = True,
                 warn: Callable[[str], None] | None = warn_stderr) -> Target:
    """``target`` ready to audit: backend -> optional guard -> ``CachedGenerator`` over ``store``."""
    from safepeft.models.batch_size import chunk_size
    from safepeft.models.cached import CachedGenerator

    opened = open_target(target, models, warn=warn)
    generator, guard = opened.generator, None
    if target.guard is not None:
        guard = guard_factory(target.guard, models, target)
        generator = guard(generator)
    chunk = getattr(opened.generator, "batch_size", target.batch_size)
    chunk = chunk_size(chunk)  # "auto": up to the cap per chunk; the generator splits it into batches that fit
    return Target(CachedGenerator(generator, store, chunk_size=chunk, progress=progress), opened.model,
                  opened.adapter, guard)


def guard_factory(guard: GuardSpec, models: Models, target: TargetSpec) -> Any:
    """The `generator -> guarded generator` hook of ``guard`` (its model loaded once per process)."""
    from safepeft.guard.build import GuardFactory

    model = models.loaded(guard.model, target) if guard.model else None
    return GuardFactory(guard.name, model, guard.model, list(guard.calibration) if guard.calibration else None)


def build_judge(judge: JudgeSpec, store: Any, models: Models, like: TargetSpec | None = None) -> Any:
    """The judge; an LLM judge gets its model as a cached target, loaded like ``like`` (dtype, device)."""
    from safepeft.audit.judges import JUDGES

    judge_class = JUDGES.get(judge.name)
    if not judge_class.needs_model:
        if judge.model is not None and getattr(judge_class, "takes_dir", False):
            dir_judge: Any = judge_class  # `takes_dir` judges (the classifier) add `judge_dir` to Judge's arguments
            return dir_judge(judge_dir=judge.model)
        return judge_class()
    spec = judge.model or judge_class.default_model
    if spec is None:
        return judge_class()  # raises the judge's own "needs a judge model" error
    built = aux_target(spec, judge.base_url, judge.api_key_env, store, models, like)
    return judge_class(built.generator, built.model)


def aux_target(spec: str, base_url: str | None, api_key_env: str | None, store: Any, models: Models,
               like: TargetSpec | None) -> Target:
    """A judge's, attacker's or rater's model as a cached generator, loaded beside the audited base."""
    from safepeft.models.batch_size import chunk_size
    from safepeft.models.cached import CachedGenerator

    base = like or TargetSpec(model=spec)
    target = TargetSpec(model=spec, base_url=base_url, api_key_env=api_key_env, dtype=base.dtype, device=base.device,
                        trust_remote_code=base.trust_remote_code, batch_size=base.batch_size)
    opened = open_target(target, models, aux=True)
    chunk = chunk_size(target.batch_size)
    return Target(CachedGenerator(opened.generator, store, chunk_size=chunk, progress=False), opened.model, None)


def build_attacks(suites: Sequence[Any], names: Sequence[str], judge: Any, store: Any, models: Models, *,
                  attacker_model: str | None = None, rater_model: str | None = None,
                  like: TargetSpec | None = None) -> list[Any]:
    """Harmful suites plus their `jailbreak:<suite>` versions under ``names``; PAIR/TAP get their attacker (default:
    the audited model) and 1-10 rater (default: the judge)."""
    from safepeft.audit.attacks.search import JudgeRater, LLMRater
    from safepeft.audit.attacks.suite import build_attacks as attack_instances
    from safepeft.audit.attacks.suite import with_attacks

    if not names:
        return list(suites)
    attacker = aux_target(attacker_model, None, None, store, models, like).generator if attacker_model else None
    rater = (LLMRater(aux_target(rater_model, None, None, store, models, like).generator) if rater_model
             else JudgeRater(judge))
    return with_attacks(suites, attack_instances(names, attacker=attacker, rater=rater), store)


def check_served(target: TargetSpec, warn: Callable[[str], None] = warn_stderr) -> None:
    """Fail early when the server answers ``target.served_adapter`` with the base model: a few greedy completions
    are compared with the local base and base + adapter (see safepeft.models.served)."""
    from pathlib import Path

    from safepeft.models.loader import load_model
    from safepeft.models.openai_compat import OpenAICompatGenerator
    from safepeft.models.served import check_served_adapter, compare_served
    from safepeft.models.spec import resolve

    assert target.base_url is not None and target.served_adapter is not None  # choose_backend checked the pairing
    if target.adapter is None or resolve(target.model).kind == "hub":
        # Loading a hub id could mean a download; the check needs weights that are already here.
        warn(f"--served-adapter {target.served_adapter} is not checked against a local model (that needs --adapter "
             "DIR and a local --model); pass --no-served-check to silence this.")
        return
    served = OpenAICompatGenerator(target.base_url, target.served_adapter, api_key_env=target.api_key_env)
    # A load of its own: compare_served attaches the adapter to it, which must not touch a pooled base.
    loaded = load_model(target.model, dtype=target.dtype, device=target.device, chat_template=target.chat_template,
                        trust_remote_code=target.trust_remote_code)
    adapter = Path(target.adapter)
    warning = check_served_adapter(compare_served(served, loaded, adapter), target.served_adapter, target.base_url,
                                   adapter)
    if warning is not None:
        warn(warning)
