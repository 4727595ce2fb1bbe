"""Contract over every registered method: trains, touches only its own parameters, round-trips, generates."""

from __future__ import annotations

import json

import pytest
import torch
from greedy import greedy_text
from numerics import model_atol

from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.base import collate
from safepeft.finetune.peft_method import PeftMethod
from safepeft.finetune.trainer import TrainSpec, train
from safepeft.models.loader import LoadedModel, load_model
from safepeft.records.generation import GenParams

STEPS = 12
# Small calibration budgets so that methods with a calibration pass stay fast on the tiny model.
FAST_OPTIONS = {"salora": {"safety_samples": 8, "task_samples": 4, "reply_tokens": 4, "safety_rank": 4,
                           "task_rank": 4, "rank": 2}}


@pytest.fixture(scope="module")
def module_data(tmp_path_factory, tiny_tokenizer):
    from finetune_helpers import SHORT_ROWS, write_jsonl

    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec

    path = write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", SHORT_ROWS)
    return load_train_data(DataSpec(source=str(path)), tiny_tokenizer, max_length=128)


@pytest.fixture(scope="module", params=FINETUNE_METHODS.names())
def trained(request, tiny_model_dir, module_data, tmp_path_factory):
    """Each method trained once (12 steps on the same 4 rows) and shared by the tests of this module."""
    name = request.param
    loaded = load_model(str(tiny_model_dir))
    before = {id(p): p.detach().clone() for p in loaded.model.parameters()}
    spec = TrainSpec(method=name, max_steps=STEPS, learning_rate=1e-2, batch_size=4, schedule="constant")
    method = FINETUNE_METHODS.get(name)
    out = tmp_path_factory.mktemp(name) / "out"
    result = train(loaded, module_data, spec, method.make_spec(**FAST_OPTIONS.get(name, {})), out,
                   show_progress=False)
    return name, method, loaded, before, result


def test_loss_decreases(trained):
    _, _, _, _, result = trained
    losses = result.record.losses
    assert len(losses) == STEPS
    assert losses[-1] < 0.9 * losses[0], losses


def test_only_adapter_parameters_change(trained):
    _, _, _, before, result = trained
    base_params = [p for p in result.model.parameters() if id(p) in before]
    assert base_params, "the base model's parameters should still be part of the trained model"
    assert all(torch.equal(p, before[id(p)]) for p in base_params)
    trainable = [p for p in result.model.parameters() if p.requires_grad]
    assert trainable and all(id(p) not in before for p in trainable)


def test_output_has_no_base_weights_and_a_record(trained):
    name, method, _, before, result = trained
    out = result.out_dir
    record = json.loads((out / "safepeft_train.json").read_text())
    assert record["method"] == name and record["steps"] == STEPS and record["base_model"]["fingerprint"]
    assert record["data"]["sha256"] and record["versions"]["torch"]
    assert not (out / "checkpoints").exists()
    base_numel = sum(t.numel() for t in before.values())
    saved = sum(f.stat().st_size for f in out.rglob("*.safetensors"))
    assert saved < 0.5 * base_numel * 4, "the output must not contain the base weights"
    if isinstance(method, PeftMethod):
        from peft import PeftConfig

        assert PeftConfig.from_pretrained(str(out)).peft_type is not None
        assert (out / "adapter_model.safetensors").is_file()


def test_round_trip_gives_identical_logits(trained, module_data, tiny_model_dir):
    _, method, _, _, result = trained
    batch = collate(module_data.examples, pad_token_id=2)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        expected = result.model(**inputs).logits
        reloaded = method.load(load_model(str(tiny_model_dir)).model, result.out_dir)
        actual = reloaded(**inputs).logits
        base = load_model(str(tiny_model_dir)).model(**inputs).logits
    if isinstance(method, PeftMethod):  # PEFT reloads run the very same ops: bit-identical
        assert torch.equal(actual, expected)
    else:  # custom formats may regroup the math (e.g. SaLoRA's x - U(U^T x)); equal up to fp32 rounding
        torch.testing.assert_close(actual, expected, rtol=0, atol=model_atol(expected, reloaded.config))
    assert not torch.allclose(actual[:, -base.shape[1]:], base), "the adapter should change the logits"


def test_generation_works_with_the_adapter(trained, tiny_model_dir):
    """The reloaded adapter generates what the trained model in memory decodes greedily (reference loop, no
    generate(), no cache, no padding), one prompt per batch so that padding cannot move an argmax."""
    _, method, _, _, result = trained
    base = load_model(str(tiny_model_dir))
    loaded = LoadedModel(method.load(base.model, result.out_dir), base.tokenizer, base.source, base.fingerprint)
    prompts = ["hi", "sky?"]
    outputs = loaded.generator(batch_size=1, progress=False).generate(prompts, GenParams(max_new_tokens=5))
    trained_model = result.model.eval()
    expected = [greedy_text(trained_model, base.tokenizer, p, 5) for p in prompts]
    # Virtual-token adapters once decoded other tokens from the second on (peft 0.21 re-injected the prompt under
    # transformers 5.2x's cache): this comparison found it; the generator now decodes them without a cache.
    assert outputs == expected


def test_loglikelihood_of_virtual_token_adapters_is_the_model_s_own(trained, tiny_model_dir):
    """Scores equal log p(continuation) computed by hand from the base model fed the virtual-token embeddings and
    the text: the virtual positions are dropped from the logits, and no cache carries them into a second call."""
    from safepeft.models.hf import HFGenerator
    from safepeft.records.generation import LoglikelihoodRequest

    _, method, _, _, result = trained
    model = result.model.eval()
    if not getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        pytest.skip("only virtual-token adapters prepend positions")
    base = load_model(str(tiny_model_dir))
    generator = HFGenerator(LoadedModel(model, base.tokenizer, base.source, base.fingerprint), progress=False)
    requests = [LoglikelihoodRequest(context="sky?", continuation=c) for c in (" blue", " it is grey", " a")]
    expected = []
    with torch.no_grad():
        for request in requests:
            context = generator._encode(generator.render(request.context), raw=False)
            cont = base.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([context + cont])
            virtual = model.get_prompt(batch_size=1)
            embeds = torch.cat([virtual, model.get_base_model().get_input_embeddings()(ids)], dim=1)
            logits = model.get_base_model()(inputs_embeds=embeds).logits[0, virtual.shape[1]:]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            expected.append(sum(float(logprobs[len(context) - 1 + k, t]) for k, t in enumerate(cont)))
    torch.testing.assert_close(torch.tensor(generator.loglikelihood(requests)), torch.tensor(expected),
                               rtol=0, atol=1e-3)


def test_output_is_the_peft_type_the_method_declares(trained):
    """`writes` is what studies and repairs ask (SaLoRA: its portable LoRA); it must match the saved adapter."""
    _, method, _, _, result = trained
    config = json.loads((result.out_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == method.writes


@pytest.mark.parametrize("name", FINETUNE_METHODS.names())
def test_spec_rejects_unknown_options(name):
    from safepeft.errors import ConfigError

    with pytest.raises(ConfigError, match="Invalid options"):
        FINETUNE_METHODS.get(name).make_spec(not_an_option=1)


@pytest.mark.parametrize("name", FINETUNE_METHODS.names())
def test_method_is_documented(name):
    method = FINETUNE_METHODS.get(name)
    assert method.name == name and method.description
    assert all(field.description for field in method.spec_class.model_fields.values())
