import pytest

from safepeft.records import GenParams

pytestmark = pytest.mark.slow


def test_embedded_model_knows_paris(embedded):
    info = embedded.info()
    assert info["architecture"] == "LlamaForCausalLM" and info["chat_template"]
    answer = embedded.generator(progress=False).generate(["What is the capital of France?"],
                                                         GenParams(max_new_tokens=24))[0]
    print("embedded answer:", answer)
    assert "Paris" in answer
