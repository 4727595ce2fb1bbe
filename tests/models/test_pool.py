"""Many adapters, one base: the pool gives exactly what a fresh load of base + adapter gives, with one base load."""

import pytest
import torch

from safepeft.models.loader import load_model
from safepeft.models.pool import AdapterPool
from safepeft.records import GenParams, LoglikelihoodRequest

PROMPTS = ["hello there", "what is the answer"]
PARAMS = GenParams(max_new_tokens=6)
REQUESTS = [LoglikelihoodRequest(context="pick one", continuation=" yes"),
            LoglikelihoodRequest(context="pick one", continuation=" no")]


def _save_adapter(model_dir, directory, config, seed):
    from peft import get_peft_model

    model = load_model(str(model_dir)).model
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # PEFT initialises LoRA B (and IA3 to identity): perturb so adapters really differ
        for param in peft_model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    from peft import IA3Config, LoraConfig, PromptTuningConfig

    root = tmp_path_factory.mktemp("adapters")
    return {
        "lora-a": _save_adapter(tiny_model_dir, root / "a", LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), 1),
        "lora-b": _save_adapter(tiny_model_dir, root / "b", LoraConfig(r=2, target_modules=["q_proj", "o_proj"]), 2),
        "ia3": _save_adapter(tiny_model_dir, root / "c", IA3Config(target_modules=["k_proj", "down_proj"],
                                                                  feedforward_modules=["down_proj"]), 3),
        "prompt": _save_adapter(tiny_model_dir, root / "d",
                                PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"), 4),
    }


def _fresh(model_dir, adapter):
    generator = load_model(str(model_dir), adapter=adapter).generator(progress=False)
    return generator.generate(PROMPTS, PARAMS), generator.loglikelihood(REQUESTS)


def test_pool_matches_fresh_loads_with_one_base_load(tiny_model_dir, adapters):
    expected = {name: _fresh(tiny_model_dir, path) for name, path in [("base", None), *adapters.items()]}
    assert len({tuple(outputs) for outputs, _ in expected.values()}) == 5, "adapters must change the outputs"
    pool = AdapterPool()
    generators = {name: pool.generator(str(tiny_model_dir), path) for name, path in
                  [("base", None), ("lora-a", adapters["lora-a"]), ("lora-b", adapters["lora-b"])]}
    for name in ["lora-b", "base", "lora-a", "base", "lora-b", "lora-a"]:  # interleaved use of one PeftModel
        outputs, scores = generators[name].generate(PROMPTS, PARAMS), generators[name].loglikelihood(REQUESTS)
        assert outputs == expected[name][0]
        assert scores == pytest.approx(expected[name][1], abs=1e-5)
    for name in ["ia3", "base", "prompt", "lora-a"]:  # other PEFT types re-wrap the same in-memory base
        generator = pool.generator(str(tiny_model_dir), adapters.get(name))
        assert generator.generate(PROMPTS, PARAMS) == expected[name][0]
    assert pool.base_loads == 1


def test_identity_names_the_adapter(tiny_model_dir, adapters):
    pool = AdapterPool()
    identities = [pool.generator(str(tiny_model_dir), path).identity() for path in (None, *adapters.values())]
    assert identities[0]["adapter"] is None
    assert len({i["adapter"] for i in identities}) == 5 and len({i["model"] for i in identities}) == 1


def test_detached_adapter_generator_refuses_to_run(tiny_model_dir, adapters):
    from safepeft.errors import ModelLoadError

    pool = AdapterPool()
    lora = pool.generator(str(tiny_model_dir), adapters["lora-a"])
    pool.generator(str(tiny_model_dir), adapters["ia3"])  # another PEFT type: the LoRA wrapper is taken off
    with pytest.raises(ModelLoadError, match="detached"):
        lora.generate(PROMPTS, PARAMS)


def test_missing_adapter_config_is_a_clear_error(tiny_model_dir, tmp_path):
    from safepeft.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="no adapter_config.json"):
        AdapterPool().generator(str(tiny_model_dir), str(tmp_path))
