"""Generation progress moves per item as rows of a batch reach EOS, not once per batch (issue 15, item 7)."""

from __future__ import annotations

import pytest
import torch

from safepeft import progress
from safepeft.models.cached import CachedGenerator
from safepeft.records import GenParams
from safepeft.store.sqlite import RunStore

PROMPTS = ["hi", "What is the capital of France?", "a b c d e f g", "x" * 30, "tell me a story", "ok", "Why?",
           "Name a colour."]
BATCH, MAX_NEW = 4, 12


@pytest.fixture
def staggered(tiny_loaded):
    """The tiny model with one extra EOS id: a byte its greedy outputs emit at different steps in different rows, so
    rows of one batch stop at different lengths (and some run to max_new_tokens)."""
    generator = tiny_loaded.generator(batch_size=BATCH, progress=False)
    generator.progress_every_steps = 1
    rows = []  # the generated token ids (decoded text does not round-trip: the tiny model emits stray bytes)
    for prompt in PROMPTS:
        ids = torch.tensor([generator._encode(generator.render(prompt), raw=False)])
        out = tiny_loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=MAX_NEW, pad_token_id=2)
        rows.append(out[0, ids.shape[1]:].tolist())

    def spread(token: int) -> int:  # distinct first positions, counting "never" as one more
        return len({row.index(token) if token in row else MAX_NEW for row in rows})

    candidates = {token for row in rows for token in row}
    assert candidates, "the tiny model generated nothing"
    stop = max(sorted(candidates), key=spread)
    assert spread(stop) >= 3, "no byte the rows emit at different steps: the test would prove nothing"
    tiny_loaded.model.generation_config.eos_token_id = [2, stop]
    return generator


def test_rows_finishing_at_eos_advance_the_caller_one_item_at_a_time(staggered):
    seen: list[float] = []
    with progress.items_to(seen.append):
        outputs = staggered.generate(PROMPTS, GenParams(max_new_tokens=MAX_NEW))
    assert len(outputs) == len(PROMPTS)
    totals = [sum(seen[: i + 1]) for i in range(len(seen))]
    assert all(n > 0 for n in seen) and totals[-1] == len(PROMPTS)
    assert any(total % BATCH for total in totals), f"only whole batches were reported: {totals}"


def test_without_a_caller_bar_the_generator_opens_its_own(staggered, capsys, monkeypatch):
    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("SAFEPEFT_PROGRESS_EVERY", "0")
    staggered.progress = True
    staggered.generate(PROMPTS, GenParams(max_new_tokens=MAX_NEW))
    lines = capsys.readouterr().err.splitlines()
    counts = [int(line.split(": ", 1)[1].split("/", 1)[0]) for line in lines if line.startswith("[progress] generate")]
    assert counts and any(c % BATCH for c in counts), lines
    assert lines[-1].startswith(f"[done] generate: {len(PROMPTS)}/{len(PROMPTS)}")


def test_cached_generation_counts_items_as_they_finish_and_shows_cached_ones(staggered, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("SAFEPEFT_PROGRESS_EVERY", "0")
    store = RunStore(tmp_path)
    params = GenParams(max_new_tokens=MAX_NEW)
    CachedGenerator(staggered, store, chunk_size=BATCH).generate(PROMPTS[:3], params)
    capsys.readouterr()
    outputs = CachedGenerator(staggered, store, chunk_size=BATCH).generate(PROMPTS, params)
    assert outputs == staggered.generate(PROMPTS, params)
    lines = capsys.readouterr().err.splitlines()
    pending = len(PROMPTS) - 3
    assert lines[-1].startswith(f"[done] generate: {pending}/{pending}") and "cached=3" in lines[-1]
    counts = [int(line.split(": ", 1)[1].split("/", 1)[0]) for line in lines if line.startswith("[progress] generate")]
    assert counts == sorted(counts) and any(c % BATCH for c in counts if c != pending), lines


def test_a_backend_that_reports_nothing_still_counts_whole_chunks(tmp_path, capsys, monkeypatch):
    from safepeft.models.doubles import EchoGenerator

    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("SAFEPEFT_PROGRESS_EVERY", "0")
    CachedGenerator(EchoGenerator(), RunStore(tmp_path), chunk_size=3).generate(PROMPTS, GenParams())
    lines = capsys.readouterr().err.splitlines()
    counts = [int(line.split(": ", 1)[1].split("/", 1)[0]) for line in lines if line.startswith("[progress] generate")]
    assert counts == [3, 6, 8] and lines[-1].startswith("[done] generate: 8/8")
