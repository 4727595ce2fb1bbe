"""`audit` steps: `safepeft.audit.runner.run_audit` on one variant, with the base model shared across variants.

The audited model comes from this process's ``AdapterPool``: consecutive audits of adapters of one base (the
scheduler orders them so) load the base once and swap adapters. Generations and judge verdicts are cached in the
step directory's run store, so a killed audit resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

RESULTS = "results.json"
_JUDGE_MODELS: dict[tuple[str, str | None], Any] = {}  # one judge model per process, reused across audits


def audit_options(params: dict[str, Any]) -> Any:
    from safepeft.audit.base import AuditOptions

    fields = {k: params[k] for k in ("limit", "per_category", "seed", "max_new_tokens", "system_prompt",
                                     "bootstrap", "split", "validation_share") if k in params}
    if params.get("attacks"):
        if "attacks" not in AuditOptions.model_fields:
            raise ConfigError("This safepeft's audit has no jailbreak attacks.", "Remove `audit.attacks`.")
        fields["attacks"] = tuple(params["attacks"])
    return AuditOptions(**fields)


def build_judge(name: str, params: dict[str, Any]) -> Any:
    """The judge; LLM judges get their model from ``params`` (`model`, optional `base_url`, `api_key_env`)."""
    from safepeft.audit.judges import JUDGES
    from safepeft.records import ArtifactRef

    judge_class = JUDGES.get(name)
    if not judge_class.needs_model:
        if params.get("model") and getattr(judge_class, "takes_dir", False):
            return judge_class(judge_dir=params["model"])  # `classifier`: a judge directory
        return judge_class()
    spec = params.get("model") or judge_class.default_model
    if spec is None:
        return judge_class()  # raises the judge's own "needs a model" error
    key = (spec, params.get("base_url"))
    if key not in _JUDGE_MODELS:
        _JUDGE_MODELS.clear()
        if params.get("base_url"):
            from safepeft.models.openai_compat import OpenAICompatGenerator

            generator = OpenAICompatGenerator(params["base_url"], spec, api_key_env=params.get("api_key_env"))
            ref = ArtifactRef(spec=spec, params={"backend": "openai", "base_url": params["base_url"]})
        else:
            from safepeft.models.loader import load_model

            loaded = load_model(spec)
            generator, ref = loaded.generator(progress=False), ArtifactRef(spec=spec, fingerprint=loaded.fingerprint)
        _JUDGE_MODELS[key] = (generator, ref)
    generator, ref = _JUDGE_MODELS[key]
    return judge_class(generator, ref)


class AuditStep(StepKind):
    """Audit one variant (model + adapter) on the study's suites."""

    name = "audit"
    description = "Audit a variant with `safepeft audit` (one base in memory shared by its adapters)."

    def validate(self, step: Step) -> None:
        from safepeft.audit.judges import JUDGES
        from safepeft.audit.runner import build_suites

        params = step.params["audit"]
        build_suites(params["suites"])
        JUDGES.get(params["judge"])
        audit_options(params)
        if step.params.get("guard"):
            from safepeft.guard import GUARDS

            GUARDS.get(step.params["guard"]["name"])

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.audit.runner import build_suites, run_audit
        from safepeft.models.cached import CachedGenerator
        from safepeft.store import RunStore

        params = ctx.params["audit"]
        model, adapter = ctx.require("model"), ctx.input("adapter")
        generator, model_ref, adapter_ref = variant_generator(model, adapter, params["batch_size"])
        guard = guard_factory(ctx.params.get("guard"))
        if guard is not None:
            generator = guard(generator)
        store = RunStore(ctx.out_dir)
        try:
            judge = build_judge(params["judge"], params.get("judge_params", {}))
            suites = build_suites(params["suites"])
            if params.get("attacks"):
                suites = attacked(suites, params["attacks"], judge, store)
            results = run_audit(
                CachedGenerator(generator, store, chunk_size=params["batch_size"], progress=False),
                suites, judge, audit_options(params), model=model_ref, adapter=adapter_ref,
                guard=guard.ref() if guard is not None else None, out_dir=ctx.out_dir, store=store,
                provenance={"study_step": ctx.step.name}, show_progress=False,
            )
        finally:
            store.close()
        return {"artifact": ctx.relative(ctx.out_dir / RESULTS), "suites": sorted(results.suites)}


def guard_factory(guard: dict[str, Any] | None) -> Any:
    """The study's guard entry as a `generator -> guarded generator` hook (None without a guard).

    `params.model` names a model the guard uses (Llama Guard, the perplexity scorer); `params.calibration` a list of
    benign prompts for the perplexity threshold."""
    if not guard:
        return None
    from safepeft.guard.build import GuardFactory
    from safepeft.models.loader import load_model

    params = guard.get("params") or {}
    unknown = set(params) - {"model", "calibration"}
    if unknown:
        raise ConfigError(f"Unknown guard option(s) {sorted(unknown)} for {guard['name']!r}.",
                          "Known: model, calibration.")
    spec = params.get("model")
    return GuardFactory(guard["name"], load_model(spec) if spec else None, spec, params.get("calibration"))


def attacked(suites: list[Any], names: list[str], judge: Any, store: Any) -> list[Any]:
    """Harmful suites plus their `jailbreak:<suite>` versions; search attacks (PAIR/TAP) rate with the judge."""
    from safepeft.audit.attacks.search import JudgeRater
    from safepeft.audit.attacks.suite import build_attacks, with_attacks

    return with_attacks(suites, build_attacks(names, attacker=None, rater=JudgeRater(judge)), store)


def variant_generator(model: str, adapter: str | None, batch_size: int) -> tuple[Any, Any, Any]:
    """(generator, model ref, adapter ref): GGUF quantized variants through llama.cpp (the deployed file itself),
    everything else from the process's AdapterPool (int8-dynamic models on CPU, where their kernels run)."""
    from safepeft.models.llamacpp import LlamaCppGenerator, prefers_llamacpp
    from safepeft.models.quantized import read_manifest
    from safepeft.records import ArtifactRef
    from safepeft.study.adapters import shared_pool

    if adapter is not None and is_model_dir(adapter):  # a repair that writes a whole model (RESTA, Safe Delta)
        model, adapter = adapter, None
    if adapter is None and prefers_llamacpp(model):
        generator = LlamaCppGenerator(model, progress=False)
        return generator, ArtifactRef(spec=model, fingerprint=generator.fingerprint,
                                      params={"backend": "llamacpp", **_quantization(model)}), None
    manifest = read_manifest(model) if Path(model).is_dir() else None
    device = "cpu" if manifest and manifest.get("format") == "torch-int8-dynamic" else "auto"
    generator = shared_pool(device=device).generator(model, adapter, batch_size=batch_size)
    loaded = generator.loaded
    model_ref = ArtifactRef(spec=model, fingerprint=loaded.fingerprint, params={
        "backend": "hf", "dtype": loaded.dtype, "source": loaded.source.kind, **_quantization(model)})
    adapter_ref = ArtifactRef(spec=adapter, fingerprint=loaded.adapter_fingerprint) if adapter else None
    return generator, model_ref, adapter_ref


def is_model_dir(path: str) -> bool:
    """A full model directory (config.json, no adapter_config.json), as weight-writing repairs output."""
    folder = Path(path)
    return (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file()


def _quantization(model: str) -> dict[str, Any]:
    """Scheme and bits of a `safepeft quantize` directory, for results.json provenance."""
    from safepeft.models.quantized import read_manifest

    manifest = read_manifest(model) if Path(model).is_dir() else None
    return {"quantization": manifest["scheme"], "bits": manifest["bits"]} if manifest else {}


STEP = AuditStep()
