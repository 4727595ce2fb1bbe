"""GGUF schemes: the fp32 export is exact, llama.cpp quantizes it, and the llama.cpp backend loads the result."""

from __future__ import annotations

import pytest
import torch
from quant_helpers import bpe_tokenizer, save_bpe_model

from safepeft.models.loader import load_model
from safepeft.records.generation import GenParams, LoglikelihoodRequest

GGUF_SCHEMES = ["gguf-q8_0", "gguf-q4_k_m", "gguf-q2_k"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_bpe_model(tmp_path_factory.mktemp("bpe-model"), initializer_range=0.3)


def test_fp32_export_round_trips_through_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from safepeft.models.tiny import tiny_llama
    from safepeft.quantize.gguf_export import write_gguf

    tokenizer = bpe_tokenizer()
    model = tiny_llama(0, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_attention_heads=4,
                       num_key_value_heads=2, initializer_range=0.3)
    facts = write_gguf(model, tokenizer, tmp_path / "m.gguf", None, "tiny")
    assert facts["tokenizer_origin"] == "hf:gpt-2"
    back = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="m.gguf")
    back_tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="m.gguf")
    ids = torch.tensor([[5, 80, 120, 200, 33]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, back(ids).logits)  # Q/K permutation inverted exactly on load
    text = "hello world, how are you <|im_end|>"
    assert back_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_non_llama_architectures_are_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from safepeft.errors import IncompatibleArtifactError
    from safepeft.quantize.gguf_export import write_gguf

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=300))
    with pytest.raises(IncompatibleArtifactError, match="Llama-architecture"):
        write_gguf(model, bpe_tokenizer(), tmp_path / "m.gguf", None, "gpt2")


@pytest.fixture(scope="module")
def quantized(model_dir, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from safepeft.quantize.run import quantize_model

    root = tmp_path_factory.mktemp("gguf")
    return {scheme: (root / scheme, quantize_model(str(model_dir), scheme, root / scheme)) for scheme in GGUF_SCHEMES}


@pytest.mark.parametrize("scheme", GGUF_SCHEMES)
def test_gguf_scheme_is_loaded_by_the_llamacpp_backend(quantized, scheme):
    from safepeft.models.backends import prefers_llamacpp
    from safepeft.models.llamacpp import LlamaCppGenerator

    out, manifest = quantized[scheme]
    assert (out / "model.gguf").is_file() and manifest["format"] == "gguf" and manifest["file"] == "model.gguf"
    assert manifest["size"]["ratio"] > 3 and prefers_llamacpp(str(out))
    generator = LlamaCppGenerator(str(out), n_ctx=256, progress=False)
    assert generator.identity()["backend"] == "llamacpp"
    outputs = generator.generate(["hello world", "how are you?"], GenParams(max_new_tokens=6))
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    assert generator.generate(["hello world"], GenParams(max_new_tokens=6)) == outputs[:1]  # greedy: repeatable
    score = generator.loglikelihood([LoglikelihoodRequest(context="the quick brown", continuation=" fox")])[0]
    assert score < 0


def test_gguf_sizes_shrink_with_bits(quantized):
    sizes = [quantized[s][1]["size"]["quantized_bytes"] for s in GGUF_SCHEMES]
    assert sizes[0] > sizes[1] > sizes[2]


def test_gguf_dir_loads_with_load_model_and_matches_llamacpp_rendering(quantized, model_dir):
    from safepeft.models.llamacpp import LlamaCppGenerator

    out, manifest = quantized["gguf-q8_0"]
    loaded = load_model(str(out))
    assert loaded.quantization["scheme"] == "gguf-q8_0" and loaded.source.kind == "gguf"
    hf, cpp = loaded.generator(progress=False), LlamaCppGenerator(str(out), n_ctx=256, progress=False)
    prefill = [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "the quick"}]
    for prompt in ("hello", prefill):
        assert cpp.render(prompt, system_prompt="Be brief.") == hf.render(prompt, system_prompt="Be brief.")
    # Q8_0 is close to the fp32 model: log-likelihoods agree within a small tolerance.
    request = [LoglikelihoodRequest(context="the quick brown", continuation=" fox jumps")]
    reference = load_model(str(model_dir)).generator(progress=False).loglikelihood(request)[0]
    assert abs(cpp.loglikelihood(request)[0] - reference) < 0.1 * abs(reference)


def test_quantize_cli_then_audit_runs_on_llamacpp_and_records_the_scheme(model_dir, tmp_path):
    pytest.importorskip("llama_cpp")
    import json

    from typer.testing import CliRunner

    from safepeft.cli.main import app
    from safepeft.records import load_results

    runner = CliRunner()
    quantized = runner.invoke(app, ["quantize", "--model", str(model_dir), "--scheme", "gguf-q4_k_m",
                                    "--out", str(tmp_path / "q4"), "--json"])
    assert quantized.exit_code == 0, quantized.output
    line = json.loads(quantized.stdout.strip().splitlines()[-1])
    assert line["scheme"] == "gguf-q4_k_m" and line["size_ratio"] > 3
    for backend, expected in (("auto", "llamacpp"), ("hf", "hf")):
        out = tmp_path / f"audit-{backend}"
        audited = runner.invoke(app, ["audit", "--model", str(tmp_path / "q4"), "--backend", backend, "--suite",
                                      "builtin", "--limit", "3", "--max-new-tokens", "4", "--bootstrap", "100",
                                      "--n-ctx", "512", "--out", str(out)])
        assert audited.exit_code == 0, audited.output
        params = load_results(out / "results.json").model.params
        assert params["backend"] == expected and params["scheme"] == "gguf-q4_k_m" and params["bits"] == 4


DECODE_EVERY_SCHEME = """
import sys
from safepeft.models.llamacpp import LlamaCppGenerator
from safepeft.records.generation import GenParams
for path in sys.argv[1:]:
    print("start", path, flush=True)
    out = LlamaCppGenerator(path, n_ctx=256, progress=False).generate(["hello world"], GenParams(max_new_tokens=8))
    print("decoded", path, repr(out[0]), flush=True)
"""


def test_every_gguf_scheme_decodes_in_a_fresh_process(quantized):
    """Issue 12: on AMX CPUs llama.cpp's AMX buffer type crashed the first decode of k-quants. A crash here kills
    only the child, so the failure names the scheme instead of taking down a pytest worker."""
    import subprocess
    import sys

    paths = [str(quantized[scheme][0]) for scheme in GGUF_SCHEMES]
    done = subprocess.run([sys.executable, "-c", DECODE_EVERY_SCHEME, *paths], capture_output=True, text=True,
                          timeout=300)
    decoded = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("decoded")]
    assert done.returncode == 0 and decoded == paths, (
        f"llama.cpp died (exit {done.returncode}) after decoding {decoded}:\n{done.stdout}\n{done.stderr[-2000:]}")


def test_llamacpp_loads_without_extra_buffer_types_and_restores_the_defaults():
    pytest.importorskip("llama_cpp")
    import llama_cpp.llama as module

    from safepeft.models.llamacpp import _plain_cpu_buffers

    original = module.llama_cpp.llama_model_default_params
    with _plain_cpu_buffers():
        assert module.llama_cpp.llama_model_default_params().use_extra_bufts is False
    assert module.llama_cpp.llama_model_default_params is original
    assert original().use_extra_bufts is True  # llama.cpp's default, which crashes on AMX CPUs
