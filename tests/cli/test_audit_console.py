"""Issue #15 (the first hour of a new user): audit tables fit 80 columns without cutting a number, the jailbreak
table shows ASR per attack, and `--adapter A --adapter B` audits several adapters on one loaded base."""

from __future__ import annotations

import json
import random

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from safepeft.audit.summary import results_tables
from safepeft.audit.taxonomy import HAZARDS
from safepeft.cli.main import app, run
from safepeft.records import load_results
from safepeft.records.results import ArtifactRef, AuditResults, CategoryResult, Metric, SuiteResult

AUDIT = ["--suite", "builtin", "--limit", "3", "--max-new-tokens", "4", "--bootstrap", "100", "--judge", "refusal"]


def _metric(rng: random.Random) -> Metric:
    low, value, high = sorted(rng.uniform(0, 1) for _ in range(3))
    return Metric(value=value, ci95=(low, high))


def _part(rng: random.Random, n: int, names: list[str]) -> CategoryResult:
    return CategoryResult(n=n, metrics={m: _metric(rng) for m in names})


def _wide_results() -> AuditResults:
    """Every hazard category (the longest is 28 characters), five safety metrics, two attacks, long metric names."""
    rng = random.Random(15)
    safety = ["harmful_rate", "refusal_rate", "partial_rate", "degenerate_rate", "blocked_rate"]
    jailbreak = ["asr", "any_attack_asr", "blocked_rate"]
    overrefusal = ["over_refusal_rate", "full_refusal_rate"]
    return AuditResults(model=ArtifactRef(spec="tiny"), suites={
        "builtin": SuiteResult(kind="safety", n=1234, metrics=_part(rng, 0, safety).metrics,
                               by_category={c: _part(rng, 100 + i, safety) for i, c in enumerate(HAZARDS)}),
        "jailbreak:builtin": SuiteResult(
            kind="jailbreak", n=66, metrics=_part(rng, 0, jailbreak).metrics,
            by_category={c: _part(rng, 6, jailbreak) for c in list(HAZARDS)[:3]},
            by_attack={"direct": _part(rng, 33, ["asr"]), "base64": _part(rng, 33, ["asr", "blocked_rate"])}),
        "xstest": SuiteResult(kind="overrefusal", n=250, metrics=_part(rng, 0, overrefusal).metrics),
    })


def _render(results: AuditResults) -> list[str]:
    console = Console(width=80, record=True)
    for table in results_tables(results):
        console.print(table)
    return console.export_text().splitlines()


def _row_text(lines: list[str], label: str) -> str:
    """Every line of the rows labelled ``label`` (a row's intervals may sit on the line under its values)."""
    hits = [i for i, line in enumerate(lines) if line.split(" ", 1)[0] == label]
    assert hits, f"no row {label!r} in\n" + "\n".join(lines)
    return "\n".join(lines[i] + "\n" + (lines[i + 1] if i + 1 < len(lines) else "") for i in hits)


def test_tables_fit_80_columns_and_show_every_number_in_full():
    results = _wide_results()
    for name, suite in results.suites.items():
        lines = _render(results.model_copy(update={"suites": {name: suite}}))  # one suite: rows are unambiguous
        text = "\n".join(lines)
        assert max(len(line) for line in lines) <= 80, text
        assert "…" not in text and "..." not in text, text
        parts = {"all": CategoryResult(n=suite.n, metrics=suite.metrics), **suite.by_category}
        for label, part in [*parts.items(), *(suite.by_attack or {}).items()]:
            row = _row_text(lines, label)
            assert str(part.n) in row, (name, label, row)
            for metric_name, metric in part.metrics.items():
                low, high = metric.ci95
                for number in (f"{metric.value:.2f}", f"[{low:.2f},{high:.2f}]"):
                    assert number in row, (name, label, metric_name, number, row)
    # Long metric names are abbreviated in the header and spelled out in the legend under the table.
    lines = _render(results)
    text = "\n".join(lines)
    assert "ORR = over_refusal_rate" in text and "FRR = full_refusal_rate" in text
    headers = {word for line in lines if line.startswith(("category ", "attack ")) for word in line.split()}
    for metric_name in ("harmful_rate", "degenerate_rate", "over_refusal_rate", "asr", "blocked_rate"):
        assert metric_name in headers or f"= {metric_name}" in text, metric_name


def test_jailbreak_table_shows_asr_per_attack():
    lines = _render(_wide_results())
    title = next(i for i, line in enumerate(lines) if "jailbreak:builtin: ASR by attack" in line)
    header = lines[title + 1].split()
    assert header[:3] == ["attack", "n", "asr"], lines[title + 1]
    direct = next(line for line in lines[title:] if line.startswith("direct "))
    assert direct.split()[-1] == "-"  # direct has no blocked_rate: a dash, not a shifted column


def _save_adapter(model_dir, directory, seed, targets):
    from peft import LoraConfig, get_peft_model

    from safepeft.models.loader import load_model

    torch.manual_seed(seed)
    peft_model = get_peft_model(load_model(str(model_dir)).model, LoraConfig(r=2, target_modules=targets))
    with torch.no_grad():  # LoRA B starts at zero: perturb it so the adapter changes what the model says
        for param in peft_model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def two_adapters(tiny_model_dir, tmp_path_factory):
    """Two adapters whose directories have the same name (both `lora`). They touch different modules, so an
    audit of the second with the first left attached gives other outputs than the second alone."""
    root = tmp_path_factory.mktemp("adapters")
    return (_save_adapter(tiny_model_dir, root / "a" / "lora", 1, ["q_proj", "v_proj"]),
            _save_adapter(tiny_model_dir, root / "b" / "lora", 2, ["o_proj"]))


def test_several_adapters_load_the_base_once_and_match_single_runs(tiny_model_dir, two_adapters, tmp_path,
                                                                   monkeypatch):
    from safepeft.models import loader

    first, second = two_adapters
    loads = []
    real_load = loader.load_model
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    out = tmp_path / "several"
    result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--adapter", str(first),
                                      "--adapter", str(second), *AUDIT, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert loads == [str(tiny_model_dir)]  # one base load for both adapters
    dirs = [out / "lora", out / "lora-2"]  # same directory name: the second is disambiguated
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"results": [str(d / "results.json") for d in dirs]}
    assert [line.strip() for line in result.stdout.splitlines()].count("builtin (safety, n=3)") == 2  # one each
    assert f"adapter {first} -> {dirs[0] / 'results.json'}" in result.stdout
    several = [load_results(d / "results.json") for d in dirs]
    assert [r.adapter.spec for r in several] == [str(first), str(second)]
    completions = [[s.completion for s in r.suites["builtin"].samples] for r in several]
    assert completions[0] != completions[1], "the two adapters must change the outputs for this test to mean much"

    # Each adapter's results are what a fresh single-adapter audit gives: the first adapter was fully taken off.
    single_out = tmp_path / "single"
    single = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--adapter", str(second), *AUDIT,
                                      "--out", str(single_out)])
    assert single.exit_code == 0, single.output
    assert '"results"' not in single.stdout  # the JSON line only with --json
    alone = load_results(single_out / "results.json")  # one adapter: OUT is the run directory, as before
    assert alone.adapter.fingerprint == several[1].adapter.fingerprint
    assert [s.completion for s in alone.suites["builtin"].samples] == completions[1]


def test_several_adapters_with_llamacpp_or_an_endpoint_is_a_one_line_error(two_adapters, tmp_path, capsys):
    first, second = two_adapters
    for extra, fragment in [(["--backend", "llamacpp"], "--backend llamacpp, which cannot apply PEFT adapters"),
                            (["--base-url", "http://127.0.0.1:9"], "--base-url, but an endpoint serves a fixed")]:
        out = tmp_path / "out"
        code = run(["audit", "--model", "unused-model", "--adapter", str(first), "--adapter", str(second), *extra,
                    "--out", str(out)])
        stderr = capsys.readouterr().err
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and fragment in lines[0], stderr
        assert "--adapter was given 2 times" in lines[0] and not out.exists()
    one_model = tmp_path / "one-model"  # a single audit's run directory cannot become a parent of several
    one_model.mkdir()
    (one_model / "results.json").write_text("{}")
    code = run(["audit", "--model", "unused-model", "--adapter", str(first), "--adapter", str(second),
                "--out", str(one_model)])
    stderr = capsys.readouterr().err
    assert code == 2 and "holds the results of a one-model audit" in stderr and "Choose another --out" in stderr
    assert sorted(p.name for p in one_model.iterdir()) == ["results.json"]
