"""`safepeft audit`: run suites against a model (or endpoint), judge, write DIR/results.json, print tables.

The flags are generated from the specs they fill (``TargetSpec``, the study's ``AuditEntry``, which is
``AuditOptions`` plus suites and judge), so an audit option works the same on the command line and in a study; the
target, judge and attacks are built by ``safepeft.target``, as the study's audit step builds them.

With several ``--adapter``s the base is loaded once (the adapter pool attaches each in turn, no merge), so N
adapters cost one model load; each gets its own run directory OUT/<adapter dir name>.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from safepeft.cli.spec_options import OptionGroup, spec_command
from safepeft.models.target_spec import GuardSpec, TargetSpec
from safepeft.study.spec import AuditEntry, JudgeParams

# Every audit option is a documented field of one spec, declared there once; these groups only name the flags.
TARGET = OptionGroup(TargetSpec, "target", flags={"model": ("--model", "-m")}, first=("model",),
                     skip=("adapter", "guard"), types={"batch_size": str})
AUDIT = OptionGroup(AuditEntry, "entry", flags={"suites": ("--suite", "-s"), "judge": ("--judge", "-j"),
                                               "attacks": ("--attack", "-a"), "prompt_kind": ("--kind",)},
                    skip=("judge_params", "batch_size"), defaults={"suites": None})
JUDGE_PARAMS = OptionGroup(JudgeParams, "judge_params", flags={"model": ("--judge-model",),
                                                              "base_url": ("--judge-base-url",)},
                           skip=("api_key_env",))
GUARD = OptionGroup(GuardSpec, "guard", flags={"name": ("--guard",), "model": ("--guard-model",)},
                    skip=("calibration",), defaults={"name": None})
OUT = typer.Option(..., "--out", "-o", help="Run directory: results.json + store (re-running resumes).")
ADAPTERS = typer.Option(None, "--adapter", help="PEFT adapter directory applied on top of the model. Repeatable: "
                        "several adapters are audited on one loaded base, each into OUT/<adapter dir name>.")
GUARD_CALIBRATION = typer.Option(None, "--guard-calibration", help="Benign prompts, one per line, to calibrate "
                                 "the perplexity guard (default: a built-in set).")
NO_SERVED_CHECK = typer.Option(False, "--no-served-check", help="Skip comparing a few greedy completions of "
                               "--served-adapter with the local --model + --adapter before the audit.")
JUDGE_ACCURACY = typer.Option(None, "--judge-accuracy", help="`safepeft judge-eval --format json` output for this "
                              "judge: its rates get judge-corrected estimates.")


def _audit(
    target: dict[str, Any],
    entry: dict[str, Any],
    judge_params: dict[str, Any],
    guard: dict[str, Any],
    adapter: list[Path] | None = ADAPTERS,
    out: Path = OUT,
    guard_calibration: Path | None = GUARD_CALIBRATION,
    no_served_check: bool = NO_SERVED_CHECK,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT/results.json of another model."),
    judge_accuracy: Path | None = JUDGE_ACCURACY,
    json_line: bool = typer.Option(False, "--json", help='End with one JSON line {"results": PATH} for scripts '
                                   '(several --adapter: {"results": [PATH, ...]}).'),
) -> None:
    """Audit safety (11 hazard categories), over-refusal and more; writes OUT/results.json.

    Several --adapter: the base is loaded once and each adapter's results go to OUT/<adapter dir name>."""
    from safepeft.audit.attacks import ATTACKS
    from safepeft.audit.judges import JUDGES
    from safepeft.audit.runner import RESULTS_FILE, build_suites
    from safepeft.audit.summary import WIDTH, results_tables
    from safepeft.guard import GUARDS
    from safepeft.models.backends import choose_backend
    from safepeft.target import Models, check_served

    adapters = list(adapter or [])
    base_spec: TargetSpec = TARGET.build(target, adapter=str(adapters[0]) if adapters else None,
                                         guard=guard_spec(guard, guard_calibration))
    audit_entry: AuditEntry = AUDIT.build({**entry, "suites": entry["suites"] or ["builtin"]},
                                          judge_params=JUDGE_PARAMS.build(judge_params))
    # Every name is checked before anything is loaded or written: a typo leaves no store behind.
    suites = build_suites(audit_entry.suites)
    for name in audit_entry.attacks:
        ATTACKS.get(name)
    JUDGES.get(audit_entry.judge)
    if base_spec.guard is not None:
        GUARDS.get(base_spec.guard.name)
    check_out_dir(out)
    runs: list[tuple[Path | None, Path]] = [(adapters[0] if adapters else None, out)]
    if len(adapters) > 1:
        runs = several_adapter_runs(out, adapters, base_spec, overwrite)
    choose_backend(base_spec)  # the --backend/--base-url/--served-adapter combinations, before any load
    models = Models(base_spec.dtype, base_spec.device)  # one base in memory for every adapter, as in a study
    if base_spec.served_adapter is not None and not no_served_check:
        check_served(base_spec)

    def run_one(run_dir: Path, adapter_path: Path | None) -> Any:
        spec = base_spec.model_copy(update={"adapter": None if adapter_path is None else str(adapter_path)})
        return audit_one(spec, audit_entry, suites, models, run_dir, overwrite=overwrite,
                         judge_accuracy=judge_accuracy)

    console = Console()
    results = None
    parent_created = len(adapters) > 1 and not out.exists()
    try:
        for adapter_path, run_dir in runs:
            results = run_one(run_dir, adapter_path)
            if len(adapters) > 1:
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
        typer.echo(json.dumps({"results": paths[0] if len(adapters) <= 1 else paths}))


audit = spec_command(_audit, TARGET, AUDIT, JUDGE_PARAMS, GUARD)


def audit_one(spec: TargetSpec, entry: AuditEntry, suites: list[Any], models: Any, run_dir: Path, *,
              overwrite: bool = False, judge_accuracy: Path | None = None) -> Any:
    """One target audited into ``run_dir`` (locked; resumes its store), as the study's audit step does."""
    from safepeft.audit.runner import RESULTS_FILE, run_audit
    from safepeft.store import RunStore
    from safepeft.store.lock import run_dir_lock
    from safepeft.study.steps.audit import audit_options
    from safepeft.target import JudgeSpec, build_attacks, build_judge, build_target

    created, store = not run_dir.exists(), None
    try:
        with run_dir_lock(run_dir):
            # A served adapter without a declared directory is recorded (and owns OUT) by its served name.
            owner = spec.adapter if spec.adapter is not None or spec.served_adapter is None else spec.served_adapter
            check_results_owner(run_dir / RESULTS_FILE, spec.model, owner, overwrite)
            store = RunStore(run_dir)
            judge = build_judge(JudgeSpec(name=entry.judge, api_key_env=spec.api_key_env,
                                          **entry.judge_params.model_dump(exclude={"api_key_env"})),
                                store, models, spec)
            if judge_accuracy is not None:
                from safepeft.audit.judge_error import read_judge_eval

                judge.measured = read_judge_eval(judge_accuracy)
            target = build_target(spec, store, models)
            run_suites = build_attacks(suites, entry.attacks, judge, store, models, like=spec,
                                       attacker_model=entry.attacker_model, rater_model=entry.attack_judge_model)
            return run_audit(target.generator, run_suites, judge, audit_options(entry), model=target.model,
                             adapter=target.adapter, guard=target.guard.ref() if target.guard else None,
                             out_dir=run_dir, store=store, provenance={"command": ["safepeft", *sys.argv[1:]]})
    except Exception:
        # A failure before any work (a NaN or pickled model, a bad adapter or judge) leaves no run directory.
        if created and (store is None or store.is_empty()):
            if store is not None:
                store.close()
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def guard_spec(values: dict[str, Any], calibration: Path | None) -> GuardSpec | None:
    """--guard NAME [--guard-model M] [--guard-calibration FILE] as a GuardSpec (None without --guard)."""
    from safepeft.errors import ConfigError

    if values.get("name") is None:
        if values.get("model") is not None or calibration is not None:
            raise ConfigError("--guard-model/--guard-calibration were given without --guard.",
                              "Add --guard NAME (see `safepeft list guards`), or drop them.")
        return None
    from safepeft.cli.generate import read_prompts

    prompts = tuple(p for p in read_prompts(calibration) if isinstance(p, str)) if calibration else None
    return GUARD.build(values, calibration=prompts)


def several_adapter_runs(out: Path, adapters: list[Path], spec: TargetSpec,
                         overwrite: bool) -> list[tuple[Path | None, Path]]:
    """(adapter, OUT/<adapter dir name>) for each adapter, after every check that needs no model."""
    from safepeft.audit.runner import RESULTS_FILE
    from safepeft.errors import ConfigError
    from safepeft.models.safety import check_adapter_dir

    if spec.base_url is not None:
        raise ConfigError(f"--adapter was given {len(adapters)} times with --base-url, but an endpoint serves a "
                          "fixed model and cannot apply local adapters.",
                          "Drop --base-url to load --model here, or audit each adapter's endpoint separately.")
    if spec.backend == "llamacpp":
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
        check_results_owner(out / unique / RESULTS_FILE, spec.model, str(path), overwrite)
        runs.append((path, out / unique))
    return runs


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


def check_results_owner(results_file: Path, model: str, adapter: str | None, overwrite: bool) -> None:
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
    if (old_model, old_adapter) != (model, adapter):
        theirs = old_model + (f" + adapter {old_adapter}" if old_adapter else "")
        raise ConfigError(f"{results_file} holds the results of another audit ({theirs}).",
                          "Choose another --out, or pass --overwrite to replace them.")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
