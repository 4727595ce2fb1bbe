"""Issue #15: a quantized folder carries a README.md saying how to load it (and warning where plain loading lies)."""

from __future__ import annotations

import pytest
from quant_helpers import save_bpe_model

from safepeft.quantize.run import quantize_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_bpe_model(tmp_path_factory.mktemp("bpe-model"))


def test_torch_scheme_readme_warns_about_plain_from_pretrained(tmp_path, model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    quantize_model(str(model_dir), "int8-dynamic", tmp_path / "q")
    text = (tmp_path / "q" / "README.md").read_text(encoding="utf-8")
    assert "int8-dynamic" in text and str(model_dir) in text and "safepeft audit --model DIR" in text
    assert "silently initialises" in text
    # The warning is true: plain from_pretrained loads without an error but the weights are not the model's.
    plain = AutoModelForCausalLM.from_pretrained(str(tmp_path / "q"))
    original = AutoModelForCausalLM.from_pretrained(str(model_dir))
    name = next(n for n, _ in original.named_parameters() if n.endswith("q_proj.weight"))
    assert not torch.allclose(dict(plain.named_parameters())[name], dict(original.named_parameters())[name], atol=0.1)
