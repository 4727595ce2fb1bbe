"""`safepeft repair auto` on a tiny triple: every candidate is scored on validation items, the chosen one is written
with repair_choice.json, and bad input fails before anything runs."""

from __future__ import annotations

import json

from safepeft.cli.main import run


def _args(triple, out, *extra):
    return ["repair", "auto", "--base", str(triple.base), "--aligned", str(triple.aligned), "--adapter",
            str(triple.adapter), "--out", str(out), "--method", "safelora", "--method", "splora", "--limit", "4",
            "--utility-suite", "arithmetic:8", "--max-new-tokens", "4", "--judge", "refusal", *extra]


def test_repair_auto_writes_the_chosen_candidate_and_every_figure(triple, tmp_path, capsys):
    from safepeft.study.builtin import REPAIR_GRID

    out = tmp_path / "auto"
    assert run(_args(triple, out)) == 0
    choice = json.loads((out / "repair_choice.json").read_text())
    grid = [e for e in REPAIR_GRID if e["method"] in ("safelora", "splora")]
    expected = sum(len(next(iter(e["grid"].values()))) for e in grid)
    assert len(choice["candidates"]) == expected
    assert choice["chosen"] in {c["label"] for c in choice["candidates"]}
    assert (out / "adapter_config.json").is_file()
    repair = json.loads((out / "safepeft_repair.json").read_text())
    chosen = next(c for c in choice["candidates"] if c["label"] == choice["chosen"])
    assert repair["method"] == chosen["method"]
    assert f"chose {choice['chosen']}" in capsys.readouterr().out
    # no test audit ran: auto stops at its choice
    plan = json.loads((tmp_path / "auto.auto-run" / "study.json").read_text())
    assert plan["efficacy"][-1]["repair"] == "auto"
    assert not list((tmp_path / "auto.auto-run").glob("variants.json"))
    # re-running resumes every step and refuses to overwrite without --overwrite
    assert run(_args(triple, out)) == 2
    assert run(_args(triple, out, "--overwrite")) == 0


def test_repair_auto_rejects_unknown_methods_before_running(triple, tmp_path, capsys):
    assert run(["repair", "auto", "--base", str(triple.base), "--aligned", str(triple.aligned), "--adapter",
                str(triple.adapter), "--out", str(tmp_path / "x"), "--method", "nope"]) == 2
    assert "Unknown repair method(s) nope" in capsys.readouterr().err
    assert not (tmp_path / "x.auto-run").exists()
