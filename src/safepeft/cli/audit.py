"""`safepeft audit`: run suites against a model (or endpoint), judge, write DIR/results.json, print tables.

With several ``--adapter``s the base is loaded once and each adapter is attached to it in turn (and taken off again,
no merge), so N adapters cost one model load; each gets its own run directory OUT/<adapter dir name>.

``build_generator`` is the one place where what is audited is composed: backend (local model / OpenAI-compatible
endpoint) -> optional guardrail wrapper -> ``CachedGenerator`` over the run store. Extensions (guards, other
backends for quantized models) plug in there; the runner only sees a Generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from safepeft.cli import options
from safepeft.records.results import ArtifactRef

SUITE = typer.Option(["builtin"], "--suite", "-s", help="NAME[:SOURCE] (repeatable): a registered suite, with a "
                     "file, folder or hub id where it reads one. See `safepeft list suites`.")
JUDGE = typer.Option("classifier", "--judge", "-j", help="Judge name (see `safepeft list judges`).")
JUDGE_MODEL = typer.Option(None, "--judge-model", help="Judge model for LLM judges: local spec or endpoint model; "
                           "for `classifier`, a judge directory from `safepeft judge train` (default: shipped).")
JUDGE_URL = typer.Option(None, "--judge-base-url", help="OpenAI-compatible base URL serving --judge-model.")
KEY_ENV = typer.Option(None, "--api-key-env", help="Env var holding the API key for --base-url/--judge-base-url.")
OUT = typer.Option(..., "--out", "-o", help="Run directory: results.json + store (re-running resumes).")
ATTACK = typer.Option(None, "--attack", "-a", help="Jailbreak attack (repeatable): safety suites run as "
                      "jailbreak:<suite> under each. See `safepeft list attacks`.")
ATTACKER = typer.Option(None, "--attacker-model", help="PAIR/TAP attacker model (default: the audited model).")
RATER = typer.Option(None, "--attack-judge-model", help="PAIR/TAP 1-10 rater model (default: the --judge).")
GUARD = typer.Option(None, "--guard", help="Guardrail wrapping the model (see `safepeft list guards`).")
GUARD_MODEL = typer.Option(None, "--guard-model", help="Model the guard uses (Llama Guard; perplexity scorer; "
                           "backtranslation model).")
GUARD_CALIBRATION = typer.Option(None, "--guard-calibration", help="Benign prompts, one per line, to calibrate "
                                 "the perplexity guard (default: a built-in set).")
BACKEND = typer.Option("auto", "--backend", help="auto (llama.cpp for `quantize --scheme gguf-*` dirs; openai with "
                       "--base-url), hf, llamacpp, openai (needs --base-url).")
SERVED_ADAPTER = typer.Option(None, "--served-adapter", help="With --base-url: audit the LoRA the server serves under "
                              "this model name (vLLM --lora-modules NAME=PATH); --model is its base and --adapter DIR "
                              "the adapter it declares to serve (fingerprinted, and checked against the server).")
NO_SERVED_CHECK = typer.Option(False, "--no-served-check", help="Skip comparing a few greedy completions of "
                               "--served-adapter with the local --model + --adapter before the audit.")
N_CTX = typer.Option(4096, "--n-ctx", min=256, help="Context size of the llama.cpp backend.")
JUDGE_ACCURACY = typer.Option(None, "--judge-accuracy", help="`safepeft judge-eval --format json` output for this "
                              "judge: its rates get judge-corrected estimates.")
ADAPTERS = typer.Option(None, "--adapter", help="PEFT adapter directory applied on top of the model. Repeatable: "
                        "several adapters are audited on one loaded base, each into OUT/<adapter dir name>.")


def build_generator(
    model: str, adapter: Path | None, store: Any, *, base_url: str | None = None, api_key_env: str | None = None,
    batch_size: int = 16, dtype: str = "auto", device: str = "auto", chat_template: Path | None = None,
    trust_remote_code: bool = False, guard: Any = None, backend: str = "auto", n_ctx: int = 4096,
    loaded: Any = None, loads: dict[Any, Any] | None = None, served_adapter: str | None = None,
) -> tuple[Any, ArtifactRef, ArtifactRef | None]:
    """(cached generator, model ref, adapter ref). ``guard(generator) -> generator`` wraps before the cache.

    ``loaded``: ``model`` (with ``adapter`` attached) already in memory. ``loads``: models loaded earlier in this
    command by (spec, dtype, device), reused for models without an adapter (judges, attackers across adapters).
    ``served_adapter``: with ``base_url``, requests go to that served model name; ``adapter`` is then the declared
    directory (hashed, never loaded)."""
    from safepeft.models.cached import CachedGenerator
    from safepeft.models.llamacpp import select_backend
    from safepeft.models.quantized import describe

    if base_url is not None:
        from safepeft.models.openai_compat import OpenAICompatGenerator
        from safepeft.models.served import served_adapter_ref

        endpoint = {"backend": "openai", "base_url": base_url}
        model_ref, adapter_ref = ArtifactRef(spec=model, params=endpoint), None
        if served_adapter is None:
            generator: Any = OpenAICompatGenerator(base_url, model, api_key_env=api_key_env)
        else:
            spec, declared = served_adapter_ref(served_adapter, adapter)
            generator = OpenAICompatGenerator(base_url, served_adapter, api_key_env=api_key_env,
                                              adapter_fingerprint=declared)
            adapter_ref = ArtifactRef(spec=spec, fingerprint=declared, params={
                **endpoint, "served_model": served_adapter, "fingerprint": "declared" if declared else None})
    elif select_backend(model, adapter, backend) == "llamacpp":
        from safepeft.models.llamacpp import LlamaCppGenerator

        generator = LlamaCppGenerator(model, n_ctx=n_ctx)
        model_ref = ArtifactRef(spec=model, fingerprint=generator.fingerprint, params=generator.model_params())
        adapter_ref = None
    else:
        if loaded is None and adapter is None:
            loaded = load_shared(model, loads, dtype, device, chat_template, trust_remote_code)
        elif loaded is None:
            loaded = options.load(model, adapter, dtype, device, chat_template, trust_remote_code)
        generator = loaded.generator(batch_size=batch_size)
        model_ref = ArtifactRef(spec=model, fingerprint=loaded.fingerprint,
                                params={"backend": "hf", "dtype": loaded.dtype, "source": loaded.source.kind,
                                        **describe(loaded.quantization)})
        adapter_ref = (ArtifactRef(spec=str(adapter), fingerprint=loaded.adapter_fingerprint)
                       if adapter is not None else None)
    if guard is not None:
        generator = guard(generator)
    return CachedGenerator(generator, store, chunk_size=batch_size), model_ref, adapter_ref


def load_shared(spec: str, loads: dict[Any, Any] | None, dtype: str, device: str, chat_template: Path | None,
                trust_remote_code: bool) -> Any:
    """``spec`` loaded without an adapter; with ``loads`` (several --adapter), once per command."""
    if loads is None:
        return options.load(spec, None, dtype, device, chat_template, trust_remote_code)
    key = (spec, dtype, device, chat_template, trust_remote_code)
    if key not in loads:
        loads[key] = options.load(spec, None, dtype, device, chat_template, trust_remote_code)
    return loads[key]


def build_judge(name: str, judge_model: str | None, judge_base_url: str | None, api_key_env: str | None,
                store: Any, **load: Any) -> Any:
    """The judge, with its own (cached) generator when it is an LLM judge."""
    from safepeft.audit.judges import JUDGES

    judge_class = JUDGES.get(name)
    if not judge_class.needs_model:
        if judge_model is not None and getattr(judge_class, "takes_dir", False):
            return judge_class(judge_dir=judge_model)
        return judge_class()
    spec = judge_model or judge_class.default_model
    if spec is None:
        return judge_class()  # raises the "needs a judge model" error
    generator, ref, _ = build_generator(spec, None, store, base_url=judge_base_url, api_key_env=api_key_env, **load)
    return judge_class(generator, ref)


def audit(
    model: str = options.MODEL,
    adapter: list[Path] | None = ADAPTERS,
    suite: list[str] = SUITE,
    judge: str = JUDGE,
    out: Path = OUT,
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N items per suite (seeded)."),
    per_category: int | None = typer.Option(None, "--per-category", min=1, help="At most N items per category."),
    seed: int = typer.Option(0, "--seed", help="Seed for subsets and bootstrap CIs."),
    split: str = typer.Option("all", "--split", help="all, or the validation or test part of every suite (split by "
                              "item-id hash): choose hyper-parameters on validation, report on test."),
    validation_share: float = typer.Option(0.3, "--validation-share", help="Share of each suite in the validation "
                                           "part of --split."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1),
    system_prompt: str | None = typer.Option(None, "--system-prompt"),
    mode: str = typer.Option("loglikelihood", "--mode", help="Multiple-choice scoring: loglikelihood | generate."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, help="Bootstrap resamples for 95% CIs."),
    judge_model: str | None = JUDGE_MODEL,
    judge_base_url: str | None = JUDGE_URL,
    base_url: str | None = typer.Option(None, "--base-url", help="Audit an OpenAI-compatible endpoint's --model."),
    api_key_env: str | None = KEY_ENV,
    batch_size: int = options.BATCH_SIZE,
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    attack: list[str] = ATTACK,
    attacker_model: str | None = ATTACKER,
    attack_judge_model: str | None = RATER,
    guard: str | None = GUARD,
    guard_model: str | None = GUARD_MODEL,
    guard_calibration: Path | None = GUARD_CALIBRATION,
    backend: str = BACKEND,
    n_ctx: int = N_CTX,
    served_adapter: str | None = SERVED_ADAPTER,
    no_served_check: bool = NO_SERVED_CHECK,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT/results.json of another model."),
    judge_accuracy: Path | None = JUDGE_ACCURACY,
    kind: str = typer.Option("harmful", "--kind", help="What `--suite prompts:FILE` holds: harmful (safety "
                             "metrics) or benign (over-refusal metrics)."),
    json_line: bool = typer.Option(False, "--json", help='End with one JSON line {"results": PATH} for scripts '
                                   '(several --adapter: {"results": [PATH, ...]}).'),
) -> None:
    """Audit safety (11 hazard categories), over-refusal and more; writes OUT/results.json.

    Several --adapter: the base is loaded once and each adapter's results go to OUT/<adapter dir name>."""
    from pydantic import ValidationError

    from safepeft.audit.attacks import ATTACKS
    from safepeft.audit.base import AuditOptions
    from safepeft.audit.runner import RESULTS_FILE, build_suites, run_audit
    from safepeft.audit.summary import WIDTH, results_tables
    from safepeft.errors import ConfigError
    from safepeft.store import RunStore

    try:
        audit_options = AuditOptions(limit=limit, per_category=per_category, seed=seed, max_new_tokens=max_new_tokens,
                                     system_prompt=system_prompt, mode=mode, bootstrap=bootstrap,
                                     attacks=tuple(attack or ()), prompt_kind=kind, split=split,
                                     validation_share=validation_share)
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = {"prompt_kind": "kind"}.get(str(error["loc"][0]), str(error["loc"][0])).replace("_", "-")
        raise ConfigError(f"Invalid --{flag}: {error['msg']} (got {error.get('input')!r}).") from None
    from safepeft.audit.judges import JUDGES
    from safepeft.guard import GUARDS
    from safepeft.store.lock import run_dir_lock

    # Every name is checked before anything is loaded or written: a typo leaves no store behind.
    suites = build_suites(suite)
    for name in attack or []:
        ATTACKS.get(name)
    JUDGES.get(judge)
    if guard:
        GUARDS.get(guard)
    check_out_dir(out)
    adapters = list(adapter or [])
    check_endpoint_options(backend, base_url, served_adapter, adapters)
    if served_adapter is not None and base_url is not None and not no_served_check:
        served_check(model, adapters[0] if adapters else None, base_url, served_adapter, api_key_env, dtype, device,
                     chat_template, trust_remote_code)
    runs: list[tuple[Path | None, Path]] = [(adapters[0] if adapters else None, out)]
    load: dict[str, Any] = dict(batch_size=batch_size, dtype=dtype, device=device,
                                trust_remote_code=trust_remote_code)
    base = None
    if len(adapters) > 1:
        runs = several_adapter_runs(out, adapters, model, base_url, backend, overwrite)
        load["loads"] = {}  # judge, guard and attacker models are loaded once too
        base = options.load(model, None, dtype, device, chat_template, trust_remote_code)

    def run_one(run_dir: Path, adapter_path: Path | None, loaded: Any) -> Any:
        created, store = not run_dir.exists(), None
        try:
            with run_dir_lock(run_dir):
                # A served adapter without a declared directory is recorded (and owns OUT) by its served name.
                owner = adapter_path if adapter_path is not None or served_adapter is None else Path(served_adapter)
                check_results_owner(run_dir / RESULTS_FILE, model, owner, overwrite)
                store = RunStore(run_dir)
                judge_obj = build_judge(judge, judge_model, judge_base_url, api_key_env, store, **load)
                if judge_accuracy is not None:
                    from safepeft.audit.judge_error import read_judge_eval

                    judge_obj.measured = read_judge_eval(judge_accuracy)
                guard_hook = build_guard(guard, guard_model, guard_calibration, load) if guard else None
                generator, model_ref, adapter_ref = build_generator(
                    model, adapter_path, store, base_url=base_url, api_key_env=api_key_env,
                    chat_template=chat_template, guard=guard_hook, backend=backend, n_ctx=n_ctx, loaded=loaded,
                    served_adapter=served_adapter, **load)
                run_suites = suites
                if attack:
                    run_suites = attack_suites(suites, attack, attacker_model, attack_judge_model, judge_obj, store,
                                               load)
                return run_audit(generator, run_suites, judge_obj, audit_options, model=model_ref,
                                 adapter=adapter_ref, guard=guard_hook.ref() if guard_hook else None, out_dir=run_dir,
                                 store=store, provenance={"command": ["safepeft", *sys.argv[1:]]})
        except Exception:
            # A failure before any work (a NaN or pickled model, a bad adapter or judge) leaves no run directory.
            if created and (store is None or store.is_empty()):
                if store is not None:
                    store.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise

    console = Console()
    results = None
    parent_created = base is not None and not out.exists()
    try:
        for adapter_path, run_dir in runs:
            if base is None:
                results = run_one(run_dir, adapter_path, None)
            else:
                assert adapter_path is not None  # several_adapter_runs pairs every directory with its adapter
                with attached(base, adapter_path) as view:
                    results = run_one(run_dir, adapter_path, view)
                # soft_wrap: a path is never broken across lines
                console.print(Text.assemble((f"adapter {adapter_path}", "bold"), f" -> {run_dir / RESULTS_FILE}"),
                              soft_wrap=True)
            for table in results_tables(results, width=min(console.width, WIDTH)):
                console.print(table)
    except Exception:
        if parent_created:
            with contextlib.suppress(OSError):  # only removed while empty: finished adapters keep their results
                out.rmdir()
        raise
    warn_small_samples(results)  # the same suites and subsets for every adapter: one warning is enough
    if json_line:
        paths = [str(run_dir / RESULTS_FILE) for _, run_dir in runs]
        typer.echo(json.dumps({"results": paths[0] if base is None else paths}))


def check_endpoint_options(backend: str, base_url: str | None, served_adapter: str | None,
                           adapters: list[Path]) -> None:
    """--backend openai, --served-adapter and a single --adapter only make sense with --base-url (and the reverse)."""
    from safepeft.errors import ConfigError

    if base_url is None and (backend == "openai" or served_adapter is not None):
        flag = "--backend openai" if backend == "openai" else f"--served-adapter {served_adapter}"
        raise ConfigError(f"{flag} was given without --base-url, so there is no server to send requests to.",
                          "Add --base-url URL (e.g. http://127.0.0.1:8000/v1), or drop the flag to load --model here.")
    if base_url is not None and backend in ("hf", "llamacpp"):
        raise ConfigError(f"--backend {backend} loads --model here, but --base-url {base_url} was given too.",
                          "Use --backend openai (or auto) with --base-url, or drop --base-url.")
    if base_url is not None and len(adapters) == 1 and served_adapter is None:
        # Without a name the request goes to --model: the base would be audited under the adapter's name.
        raise ConfigError(f"--adapter {adapters[0]} was given with --base-url, but an endpoint cannot apply a local "
                          "adapter.", "Serve it (vLLM: --enable-lora --lora-modules NAME=DIR) and pass "
                          "--served-adapter NAME, or drop --base-url to load --model here.")


def served_check(model: str, adapter: Path | None, base_url: str, served_adapter: str, api_key_env: str | None,
                 dtype: str, device: str, chat_template: Path | None, trust_remote_code: bool) -> None:
    """Fail early when the server answers --served-adapter with the base model (see safepeft.models.served)."""
    from safepeft.models.openai_compat import OpenAICompatGenerator
    from safepeft.models.served import check_served_adapter, compare_served
    from safepeft.models.spec import resolve

    if adapter is None or resolve(model).kind == "hub":
        # Loading a hub id could mean a download; the check needs weights that are already here.
        typer.echo(f"warning: --served-adapter {served_adapter} is not checked against a local model (that needs "
                   "--adapter DIR and a local --model); pass --no-served-check to silence this.", err=True)
        return
    served = OpenAICompatGenerator(base_url, served_adapter, api_key_env=api_key_env)
    loaded = options.load(model, None, dtype, device, chat_template, trust_remote_code)
    warning = check_served_adapter(compare_served(served, loaded, adapter), served_adapter, base_url, adapter)
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)


def several_adapter_runs(out: Path, adapters: list[Path], model: str, base_url: str | None, backend: str,
                         overwrite: bool) -> list[tuple[Path | None, Path]]:
    """(adapter, OUT/<adapter dir name>) for each adapter, after every check that needs no model."""
    from safepeft.audit.runner import RESULTS_FILE
    from safepeft.errors import ConfigError
    from safepeft.models.safety import check_adapter_dir

    if base_url is not None:
        raise ConfigError(f"--adapter was given {len(adapters)} times with --base-url, but an endpoint serves a "
                          "fixed model and cannot apply local adapters.",
                          "Drop --base-url to load --model here, or audit each adapter's endpoint separately.")
    if backend == "llamacpp":
        raise ConfigError(f"--adapter was given {len(adapters)} times with --backend llamacpp, which cannot apply "
                          "PEFT adapters.", "Use --backend hf (or auto), or merge each adapter first "
                          "(safepeft quantize --adapter DIR ...) and audit the merged models one by one.")
    if (out / RESULTS_FILE).is_file():
        raise ConfigError(f"--out {out} holds the results of a one-model audit, but with several --adapter it is "
                          "the parent of one run directory per adapter.", "Choose another --out.")
    runs: list[tuple[Path | None, Path]] = []
    taken: set[str] = set()
    for path in adapters:
        check_adapter_dir(path)  # a bad third adapter fails now, not after two audits
        name = path.resolve().name or "adapter"
        unique, index = name, 2
        while unique in taken:
            unique, index = f"{name}-{index}", index + 1
        taken.add(unique)
        check_out_dir(out / unique)
        check_results_owner(out / unique / RESULTS_FILE, model, path, overwrite)
        runs.append((path, out / unique))
    return runs


@contextlib.contextmanager
def attached(base: Any, adapter: Path) -> Iterator[Any]:
    """A view of the loaded ``base`` with ``adapter`` on top; on exit the base's own modules are back (no merge)."""
    from safepeft.models.loader import attach_adapter

    view = dataclasses.replace(base)
    attach_adapter(view, adapter)
    try:
        yield view
    finally:
        # LoRA-like adapters replace base modules in place; unload() puts the originals back. Prompt-learning
        # adapters only wrap the model, which dropping the view undoes.
        if not view.model.active_peft_config.is_prompt_learning:
            view.model.unload()


def warn_small_samples(results: Any) -> None:
    """One stderr line per suite whose rates rest on too few items to compare with another model."""
    from safepeft.intervals import SMALL_N, SMALL_SAMPLE_RULE, too_small

    for name, suite in results.suites.items():
        widest = max(((m.ci95[1] - m.ci95[0]) for m in suite.metrics.values() if m.ci95 is not None), default=None)
        if too_small(suite.n, None if widest is None else (0.0, widest)):
            typer.echo(f"warning: {name} has n={suite.n}" + (f" (< {SMALL_N})" if suite.n < SMALL_N else "")
                       + f": {SMALL_SAMPLE_RULE}; raise --limit/--per-category.", err=True)


def check_out_dir(out: Path) -> None:
    """OUT must be a directory (or not exist yet) that we can write into."""
    from safepeft.errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file.", "Pass a directory (it is created if missing).")


def check_results_owner(results_file: Path, model: str, adapter: Path | None, overwrite: bool) -> None:
    """Refuse to replace another model's results.json: re-running the same model (and adapter) resumes."""
    from safepeft.errors import ConfigError

    if overwrite or not results_file.is_file():
        return
    try:
        previous = json.loads(results_file.read_text(encoding="utf-8"))
        old_model = previous["model"]["spec"]
        old_adapter = (previous.get("adapter") or {}).get("spec")
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{results_file} exists but is not a safepeft results file.",
                          "Choose another --out, or pass --overwrite to replace it.") from None
    new_adapter = None if adapter is None else str(adapter)
    if (old_model, old_adapter) != (model, new_adapter):
        theirs = old_model + (f" + adapter {old_adapter}" if old_adapter else "")
        raise ConfigError(f"{results_file} holds the results of another audit ({theirs}).",
                          "Choose another --out, or pass --overwrite to replace them.")


def build_guard(name: str, guard_model: str | None, calibration: Path | None, load: dict[str, Any]) -> Any:
    """The `--guard` hook: wraps the audited generator before the run-store cache."""
    from safepeft.cli.generate import read_prompts
    from safepeft.guard import GUARDS
    from safepeft.guard.build import GuardFactory

    GUARDS.get(name)  # unknown names fail before any model is loaded
    model_obj = (load_shared(guard_model, load.get("loads"), load["dtype"], load["device"], None,
                             load["trust_remote_code"]) if guard_model else None)
    prompts = [p for p in read_prompts(calibration) if isinstance(p, str)] if calibration else None
    return GuardFactory(name, model_obj, guard_model, prompts)


def attack_suites(suites: list[Any], names: list[str], attacker_model: str | None, rater_model: str | None,
                  judge_obj: Any, store: Any, load: dict[str, Any]) -> list[Any]:
    """Safety suites -> jailbreak:<suite> under the attacks; PAIR/TAP get their attacker and 1-10 rater."""
    from safepeft.audit.attacks.search import JudgeRater, LLMRater
    from safepeft.audit.attacks.suite import build_attacks, with_attacks

    attacker = build_generator(attacker_model, None, store, **load)[0] if attacker_model else None
    rater = LLMRater(build_generator(rater_model, None, store, **load)[0]) if rater_model else JudgeRater(judge_obj)
    return with_attacks(suites, build_attacks(names, attacker=attacker, rater=rater), store)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
