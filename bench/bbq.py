"""BBQ log-likelihood scoring on the embedded model: safepeft vs lm-evaluation-harness vs naive per-option passes.

All three score the same items with the same requests: the lm-eval `bbq` format (chat-templated
"{context}\\n\\nQ: {question}\\nA:", two group answers + ten 'unknown' wordings = 12 continuations per item).

- safepeft: `HFGenerator.loglikelihood` (each distinct context encoded once, continuations batched off its KV cache);
- lm-eval: `lm_eval.models.huggingface.HFLM.loglikelihood` on the same loaded model and tokenizer, fed the rendered
  chat text as context and each candidate as continuation (its own batching, length sorting and padding);
- naive: one full forward pass per (context + continuation) (`safepeft.models.hf.naive_loglikelihood`).

Items: `--per-category` items of each dimension from the real BBQ files in ../shared/data/bbq (the built-in items
when that folder is missing), seeded. Each scorer gets one warm-up item first. Reported: items/s, the ratios, and
whether the argmax choices agree (lm-eval moves the chat template's trailing newline into the continuation, so its
values differ slightly by design; the naive values must equal safepeft's).
Usage: .venv/bin/python bench/bbq.py [--per-category 3] [--batch-size 16] [--data DIR]
Needs `pip install -e .[bench]` (lm-eval). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from safepeft.audit.fairness.builtin import builtin_records  # noqa: E402
from safepeft.audit.fairness.loader import items_from_records, load_bbq, select  # noqa: E402
from safepeft.audit.fairness.prompts import choices, loglikelihood_requests, pick  # noqa: E402
from safepeft.models.hf import naive_loglikelihood  # noqa: E402
from safepeft.models.loader import load_model  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbq"


def load_items(data: Path, per_category: int):
    if data.is_dir():
        items, _ = load_bbq(str(data))
        source = str(data)
    else:
        items, _ = items_from_records(builtin_records(), "builtin")
        source = "builtin"
    return select(items, per_category, None, seed=0), source


def timed(score, items, requests_of):
    """(items/s, per-request values) of score(requests) over all items, after one warm-up item."""
    score(requests_of(items[:1]))
    start = time.perf_counter()
    values = score(requests_of(items))
    return len(items) / (time.perf_counter() - start), values


def lm_eval_scorer(loaded, generator, batch_size: int):
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, device=loaded.device)

    def score(requests):
        instances = [
            Instance("loglikelihood", {}, (generator.render(r.context, r.system_prompt), r.continuation), i)
            for i, r in enumerate(requests)
        ]
        return [value for value, _ in lm.loglikelihood(instances, disable_tqdm=True)]

    return score, f"lm-eval {lm_eval.__version__} HFLM.loglikelihood"


def choices_of(items, values):
    out, start = [], 0
    for item in items:
        count = len(choices(item))
        out.append(pick(item, values[start : start + count]))
        start += count
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    loaded = load_model("embedded")
    generator = loaded.generator(batch_size=args.batch_size, progress=False)
    items, source = load_items(args.data, args.per_category)

    def requests_of(subset):
        return [r for item in subset for r in loglikelihood_requests(item, None)]

    ours, ours_values = timed(generator.loglikelihood, items, requests_of)
    naive, naive_values = timed(lambda reqs: naive_loglikelihood(generator, reqs), items, requests_of)
    lm_rate = lm_values = lm_name = lm_missing = None
    try:
        lm_score, lm_name = lm_eval_scorer(loaded, generator, args.batch_size)
        lm_rate, lm_values = timed(lm_score, items, requests_of)
    except ImportError as exc:  # the baseline is optional: its figures are null, with the reason
        lm_missing = f"lm-eval not installed ({exc}); pip install 'safepeft[bench]'"
    except Exception as exc:  # an lm-eval release that breaks the baseline must not lose safepeft's own figures
        lm_rate = lm_values = None
        lm_missing = f"lm-eval baseline failed: {type(exc).__name__}: {str(exc)[:300]}"

    ours_choices = choices_of(items, ours_values)
    print(f"items: {len(items)} from {source}, {len(requests_of(items))} requests, batch size {args.batch_size}")
    print(f"safepeft shared-prefix: {ours:.2f} items/s")
    print(f"{lm_name}: {lm_rate:.2f} items/s" if lm_rate is not None else f"lm-eval baseline skipped: {lm_missing}")
    print(f"naive per-option forward: {naive:.2f} items/s")
    print(json.dumps({
        "items": len(items),
        "requests": len(requests_of(items)),
        "source": source,
        "safepeft_items_per_s": round(ours, 3),
        "lm_eval_items_per_s": None if lm_rate is None else round(lm_rate, 3),
        "naive_items_per_s": round(naive, 3),
        "lm_eval": lm_name,
        "lm_eval_missing": lm_missing,
        "naive_max_abs_diff": max(abs(a - b) for a, b in zip(ours_values, naive_values, strict=True)),
        "same_choices_as_naive": ours_choices == choices_of(items, naive_values),
        "choice_agreement_with_lm_eval": None if lm_values is None else sum(
            a == b for a, b in zip(ours_choices, choices_of(items, lm_values), strict=True)) / len(items),
        "vs_lm_eval": None if lm_rate is None else round(ours / lm_rate, 3),
        "vs_naive": round(ours / naive, 3),
    }))


if __name__ == "__main__":
    main()
