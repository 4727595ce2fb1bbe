"""GGUF Q4_K_M of the embedded SmolLM2 through llama.cpp, audited by the llama.cpp backend (`slow`, in CI)."""

from __future__ import annotations

import pytest

from safepeft.records.generation import GenParams, LoglikelihoodRequest

pytestmark = pytest.mark.slow


def test_embedded_gguf_q4_k_m(tmp_path):
    pytest.importorskip("llama_cpp")
    import gguf

    from safepeft.models.llamacpp import LlamaCppGenerator
    from safepeft.quantize.run import quantize_model

    manifest = quantize_model("embedded", "gguf-q4_k_m", tmp_path / "q4")
    assert manifest["tokenizer_origin"].startswith("gguf:")  # the source GGUF's tokenizer, pre-tokenizer included
    reader = gguf.GGUFReader(str(tmp_path / "q4" / "model.gguf"))
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    print(f"\nembedded gguf-q4_k_m: size ratio {manifest['size']['ratio']} "
          f"({manifest['size']['quantized_bytes'] / 2**20:.1f} MiB)")
    assert manifest["size"]["ratio"] > 4
    generator = LlamaCppGenerator(str(tmp_path / "q4"), n_ctx=1024, progress=False)
    answer = generator.generate(["What is the capital of France?"], GenParams(max_new_tokens=24))[0]
    assert answer.strip()
    # Greedy text differs between engines on near-ties (docs/quantize.md); likelihoods show the model intact.
    paris, london = generator.loglikelihood([
        LoglikelihoodRequest(context=[{"role": "user", "content": "What is the capital of France?"}],
                             continuation=f"The capital of France is {city}.") for city in ("Paris", "London")])
    assert paris > london
