import pytest

from safepeft.models.hf import naive_loglikelihood
from safepeft.records import GenParams, LoglikelihoodRequest

PROMPTS = ["hi", "What is the capital of France?", "a b c d e f g", "x" * 30, "tell me a story", "ok", "Why?"]


def test_batched_generation_equals_one_by_one(tiny_loaded):
    generator = tiny_loaded.generator(batch_size=3, progress=False)
    params = GenParams(max_new_tokens=12)
    batched = generator.generate(PROMPTS, params)
    single = [generator.generate([p], params)[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) > 1, "degenerate model: the comparison would prove nothing"


def test_seeded_sampling_is_reproducible(tiny_loaded):
    generator = tiny_loaded.generator(batch_size=4, progress=False)
    params = GenParams(max_new_tokens=10, temperature=1.0, seed=7)
    assert generator.generate(PROMPTS, params) == generator.generate(PROMPTS, params)
    greedy = generator.generate(PROMPTS, GenParams(max_new_tokens=10))
    assert generator.generate(PROMPTS, params) != greedy


def test_stop_strings_cut_output(tiny_loaded):
    generator = tiny_loaded.generator(progress=False)
    full = generator.generate(["hello"], GenParams(max_new_tokens=16))[0]
    assert len(full) > 2
    cut = generator.generate(["hello"], GenParams(max_new_tokens=16, stop=[full[1:3]]))[0]
    assert full.startswith(cut) and len(cut) < len(full)


def test_chat_rendering_system_prompt_and_prefill(tiny_loaded):
    generator = tiny_loaded.generator(progress=False)
    text = generator.render("hi", system_prompt="Be safe.")
    assert text.startswith("<|im_start|>system\nBe safe.<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    prefill = generator.render([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure, here"}])
    assert prefill.endswith("<|im_start|>assistant\nSure, here")
    assert generator.render("raw text", chat=False) == "raw text"


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_shared_prefix_loglikelihood_equals_full_forward(tiny_loaded, batch_size):
    generator = tiny_loaded.generator(batch_size=batch_size, progress=False)
    chat = [{"role": "user", "content": "Question? (a) cat (b) dog (c) unknown"}]
    requests = [LoglikelihoodRequest(context=chat, continuation=c) for c in ["a", "dog", "the answer is (c)", ""]]
    requests += [LoglikelihoodRequest(context="Raw context:", continuation=c) for c in [" yes", " no thanks"]]
    requests += [LoglikelihoodRequest(context=chat, continuation="dog", system_prompt="Answer briefly.")]
    shared = generator.loglikelihood(requests)
    naive = naive_loglikelihood(generator, requests)
    assert shared == pytest.approx(naive, abs=1e-4)
    assert shared[3] == 0.0
    assert shared[6] != pytest.approx(shared[1], abs=1e-6), "system prompt must change the context"
