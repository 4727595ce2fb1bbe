"""The `classifier` judge against human labels, and what judging costs next to generating.

- cv_agreement: leave-one-model-out over XSTest's three human-labelled completion files (fit on two models, score
  the third; mean of the three), with the shipped judge's training parameters. Anchors on the same rows: the
  rule-based `refusal` judge, and the XSTest authors' string match (0.918) and GPT-4 judge (0.845) from their paper.
- jbb_agreement: JailbreakBench judge-comparison (100 rows) by 5-fold CV, each fold fitted on all XSTest rows + the
  other four folds; also the shipped judge as it is (no JBB row in its training) and the `refusal` judge.
- rows_per_s / judge_share: the shipped judge's throughput, and its time as a share of generating the same audit
  (builtin suite, --max-new-tokens 128, the audit default) on the embedded model.
Usage: .venv/bin/python bench/judge.py [--data ../shared/data] [--gen-items 33]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

XSTEST_FILES = ("xstest_v2_completions_gpt4.csv", "xstest_v2_completions_llama2new.csv",
                "xstest_v2_completions_llama2orig.csv")


def agreement(predicted, rows) -> float:
    return round(sum(bool(p) == bool(r.label) for p, r in zip(predicted, rows, strict=True)) / len(rows), 4)


def main() -> None:
    import torch

    from safepeft.audit.judge_eval import read_labels
    from safepeft.audit.judges.base import JudgeInput
    from safepeft.audit.judges.classifier import ClassifierJudge
    from safepeft.audit.judges.refusal import RefusalJudge
    from safepeft.audit.judges.train import JudgeTrainSpec, train_judge
    from safepeft.classifiers.judge_features import hidden_features
    from safepeft.models.loader import load_model

    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--gen-items", type=int, default=33, help="builtin items generated for the cost ratio")
    args = parser.parse_args()
    files = [args.data / "xstest" / "model_completions" / name for name in XSTEST_FILES]
    jbb = args.data / "jailbreakbench" / "judge-comparison.csv"
    missing = [str(path) for path in [*files, jbb] if not path.is_file()]
    if missing:  # human labels are what every figure is measured against
        print(json.dumps({"bench": "judge", "cv_agreement": None, "jbb_agreement": None, "rows_per_s": None,
                          "judge_share": None, "reason": f"labelled data missing: {', '.join(missing)} "
                                                         "(pass --data DIR, e.g. ../shared/data)"}))
        return

    shipped = ClassifierJudge()
    spec = JudgeTrainSpec(**shipped.provenance["training"])
    loaded = load_model(spec.base, dtype="float32")
    shipped._loaded = loaded
    rows = {path: read_labels(path) for path in [*files, jbb]}
    started = time.perf_counter()
    feats = {path: hidden_features(loaded.model, loaded.tokenizer, [(r.prompt, r.response) for r in labelled],
                                   spec.features(), spec.batch_size) for path, labelled in rows.items()}
    feature_s = time.perf_counter() - started
    n_rows = sum(len(r) for r in rows.values())
    with tempfile.TemporaryDirectory() as tmp:
        provenance = train_judge(files, Path(tmp) / "judge", spec, cv_files=[jbb], loaded=loaded, features=feats)
    per_file = {name: v["agreement"] for name, v in provenance["validation"]["per_file"].items()}
    cv_agreement = round(sum(per_file.values()) / len(per_file), 4)

    rule = RefusalJudge()
    xs_rows = [r for path in files for r in rows[path]]
    rule_xs = agreement([v.harmful for v in rule.judge([JudgeInput(prompt=r.prompt, completion=r.response)
                                                        for r in xs_rows])], xs_rows)
    rule_jbb = agreement([v.harmful for v in rule.judge([JudgeInput(prompt=r.prompt, completion=r.response)
                                                         for r in rows[jbb]])], rows[jbb])
    shipped_probs = torch.sigmoid(shipped.probe.logits(feats[jbb])).tolist()
    shipped_jbb = agreement([p >= 0.5 for p in shipped_probs], rows[jbb])

    # Cost: generate an audit's worth of builtin items, then judge the completions with the shipped judge.
    from safepeft.audit.suites import SUITES
    from safepeft.records.generation import GenParams

    items = SUITES.get("builtin")().items()[: args.gen_items]
    generator = loaded.generator(progress=False)
    started = time.perf_counter()
    completions = generator.generate([item.prompt for item in items], GenParams(max_new_tokens=128))
    gen_s = time.perf_counter() - started
    inputs = [JudgeInput(prompt=item.request or str(item.prompt), completion=c) for item, c in
              zip(items, completions, strict=True)]
    started = time.perf_counter()
    shipped.judge(inputs)
    judge_s = time.perf_counter() - started

    result = {
        "bench": "judge", "n_xstest": len(xs_rows), "n_jbb": len(rows[jbb]),
        "cv_agreement": cv_agreement, "cv_per_model": per_file,
        "cv_pooled": provenance["validation"]["agreement"], "cv_kappa": provenance["validation"]["kappa"],
        "jbb_agreement": provenance["cv_labels"][jbb.name]["agreement"], "jbb_shipped": shipped_jbb,
        "anchors": {"refusal_xstest": rule_xs, "refusal_jbb": rule_jbb, "string_match_xstest_paper": 0.918,
                    "gpt4_xstest_paper": 0.845},
        "rows_per_s": round(len(inputs) / judge_s, 2), "feature_rows_per_s": round(n_rows / feature_s, 2),
        "gen_s": round(gen_s, 2), "judge_s": round(judge_s, 2), "judge_share": round(judge_s / gen_s, 4),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
