"""The report's efficacy page: drift and repair tables, the recovery / utility-kept Pareto plot, in HTML and
Markdown, only when a study wrote efficacy.json."""

from __future__ import annotations

import re
import shutil

from safepeft.records import Metric
from safepeft.records.efficacy import Choice, Drift, EfficacyResults, EfficacyRow
from safepeft.report import make_report


def _row(repair, recovery, kept, harmful, significant=True):
    return EfficacyRow(finetune="m/lora-contaminated", variant=f"m/lora-contaminated+{repair}", repair=repair,
                       chosen=f"{repair}[x=1]",
                       harmful_rate=Metric(value=harmful, ci95=(harmful - 0.05, harmful + 0.05)),
                       harmful_change=Metric(value=harmful - 0.5, ci95=(harmful - 0.6, harmful - 0.4)),
                       significant=significant, recovery=Metric(value=recovery, ci95=(recovery - 0.1, recovery + 0.1)),
                       utility_kept=Metric(value=kept, ci95=(kept - 0.1, kept + 0.1)),
                       over_refusal_change=Metric(value=0.01, ci95=(-0.05, 0.07)), seconds=12.0, extra_params=0,
                       output="adapter")


def _efficacy():
    drift = Drift(finetune="m/lora-contaminated", aligned="m+aligned", harmful_aligned=Metric(value=0.04),
                  harmful_finetuned=Metric(value=0.5), drift=Metric(value=0.46, ci95=(0.36, 0.55)), n_harmful=250,
                  n_utility=105, n_benign=120)
    rows = [_row("resta", 0.875, 1.2, 0.1), _row("safelora", 0.32, 0.86, 0.35), _row("splora", 0.9, 0.6, 0.08)]
    choice = Choice(repair="resta", chosen="resta[x=1]", rule="r", min_utility_kept=0.95, candidates=[],
                    n_harmful=100, n_utility=40)
    return EfficacyResults(validation_share=0.3, min_utility_kept=0.95, drifts=[drift], rows=rows, choices=[choice],
                           notes=["a note about sizes"])


def test_efficacy_page_in_html_and_markdown(results_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(results_dir, run)
    (run / "efficacy.json").write_text(_efficacy().model_dump_json())
    page = make_report([run])
    assert '<section id="efficacy">' in page and '<a href="#efficacy">' in page
    section = page.split('<section id="efficacy">')[1].split("</section>")[0]
    assert "+46.0 pp [+36.0 pp, +55.0 pp]" in section and "87.5% [77.5%, 97.5%]" in section
    assert "a note about sizes" in section and section.count("<svg") == 1
    # Pareto: resta (more utility) and splora (more recovery) are on the front; safelora is dominated by resta
    front = re.search(r"Pareto front: <b>(.*?)</b>", section).group(1)
    assert front == "lora-contaminated+splora, lora-contaminated+resta"
    assert "(higher is better) →</text>" in section.split("Recovery of lost safety")[1][:40]
    md = make_report([run], "md")
    assert "## Repair efficacy" in md and "| m/lora-contaminated | resta | resta[x=1] |" in md
    assert "efficacy" in make_report([run], "json")
