"""The vllm backend against a minimal fake of the three vLLM classes it uses (LLM, SamplingParams, LoRARequest).

The fake records what the backend asks of vLLM; a real vLLM is never imported here (see docs/gpu.md).
"""

from __future__ import annotations

import json
import sys
import types
from types import SimpleNamespace

import pytest

from safepeft.errors import ConfigError, MissingDependencyError
from safepeft.models import vllm_backend
from safepeft.records.generation import GenParams, LoglikelihoodRequest


def _logprob(position: int, token: int) -> float:
    """The fake engine's log-probability of ``token`` at prompt ``position``: distinct per position and token."""
    return -(1 + (token * 7 + position) % 11) / 10


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        from safepeft.models.tiny import tiny_tokenizer

        self.kwargs = kwargs
        self.calls: list[dict] = []
        self.tokenizer = tiny_tokenizer()
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None):
        self.calls.append({"prompts": prompts, "params": sampling_params, "lora": lora_request, "tqdm": use_tqdm})
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            name = lora_request.lora_name if lora_request is not None else "base"
            logprobs = None
            if sampling_params.prompt_logprobs is not None:  # the prompt token and a decoy top-1 at each position
                decoy = SimpleNamespace(logprob=-0.01)
                logprobs = [None] + [{t: SimpleNamespace(logprob=_logprob(p, t)), t + 1: decoy}
                                     for p, t in enumerate(ids) if p > 0]
            text = f"{name}:{len(ids)} STOP tail"
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(text=text)], prompt_logprobs=logprobs))
        return outputs


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.prompt_logprobs = kwargs.get("prompt_logprobs")


class FakeLoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams, vllm.__version__ = FakeLLM, FakeSamplingParams, "0.0.fake"
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.instances = []
    vllm_backend.release()
    yield vllm
    vllm_backend.release()


@pytest.fixture(scope="module")
def lora_dirs(tiny_model_dir, tmp_path_factory):
    from peft import IA3Config, LoraConfig, get_peft_model

    from safepeft.models.tiny import tiny_llama

    root = tmp_path_factory.mktemp("vllm-adapters")
    configs = {"a": LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
               "b": LoraConfig(r=40, target_modules=["q_proj"]),
               "ia3": IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])}
    dirs = {}
    for seed, (name, config) in enumerate(configs.items()):
        get_peft_model(tiny_llama(seed), config).save_pretrained(str(root / name))
        dirs[name] = root / name
    return dirs


def test_one_engine_serves_every_adapter_with_distinct_lora_requests(fake_vllm, tiny_model_dir, lora_dirs):
    base = vllm_backend.vllm_generator(str(tiny_model_dir), dtype="float16")
    a = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["a"], dtype="float16")
    a_again = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["a"], dtype="float16")
    assert len(FakeLLM.instances) == 1
    engine = FakeLLM.instances[0]
    assert engine.kwargs == {"model": str(tiny_model_dir), "dtype": "float16", "trust_remote_code": False,
                             "enable_lora": True, "max_lora_rank": 16, "load_format": "safetensors", "seed": 0}
    assert base.lora_request is None
    assert (a.lora_request.lora_int_id, a.lora_request.lora_path) == (1, str(lora_dirs["a"].resolve()))
    assert a_again.lora_request.lora_int_id == 1  # the same directory keeps its id
    # A rank-40 adapter needs max_lora_rank 64: the engine is rebuilt once, and ids restart on the new engine.
    b = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["b"], dtype="float16")
    assert len(FakeLLM.instances) == 2 and FakeLLM.instances[1].kwargs["max_lora_rank"] == 64
    a_on_new = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["a"], dtype="float16")
    assert len(FakeLLM.instances) == 2
    assert {b.lora_request.lora_int_id, a_on_new.lora_request.lora_int_id} == {1, 2}
    assert b.lora_request.lora_name != a_on_new.lora_request.lora_name


def test_prompts_and_params_map_onto_the_request(fake_vllm, tiny_model_dir, lora_dirs, tiny_tokenizer):
    generator = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["a"])
    engine = FakeLLM.instances[0]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]
    greedy = GenParams(max_new_tokens=7, stop=("STOP",), system_prompt="Be brief.")
    outputs = generator.generate(["hello", chat], greedy)
    call = engine.calls[-1]
    assert call["params"].kwargs == {"max_tokens": 7, "temperature": 0.0, "stop": ["STOP"]}
    assert call["lora"] is generator.lora_request and call["tqdm"] is False
    first = tiny_tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "hello"}], tokenize=False,
                                               add_generation_prompt=True)
    prefill = tiny_tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."}, *chat], tokenize=False,
                                                 continue_final_message=True)
    expected = [tiny_tokenizer(t, add_special_tokens=False)["input_ids"] for t in (first, prefill)]
    assert [p["prompt_token_ids"] for p in call["prompts"]] == expected
    name = generator.lora_request.lora_name
    assert outputs == [f"{name}:{len(expected[0])} ", f"{name}:{len(expected[1])} "]  # cut at the stop string
    sampled = GenParams(max_new_tokens=3, temperature=0.7, top_p=0.9, seed=5, chat=False)
    generator.generate(["raw text"], sampled)
    call = engine.calls[-1]
    assert call["params"].kwargs == {"max_tokens": 3, "temperature": 0.7, "top_p": 0.9, "seed": 5}
    assert call["prompts"][0]["prompt_token_ids"] == tiny_tokenizer("raw text", add_special_tokens=True)["input_ids"]


def test_loglikelihood_sums_the_continuation_tokens_prompt_logprobs(fake_vllm, tiny_model_dir, tiny_tokenizer):
    generator = vllm_backend.vllm_generator(str(tiny_model_dir))
    requests = [LoglikelihoodRequest(context="2+2=", continuation=" 4"),
                LoglikelihoodRequest(context=[{"role": "user", "content": "Pick"}], continuation="B"),
                LoglikelihoodRequest(context="x", continuation="")]
    scores = generator.loglikelihood(requests)
    call = FakeLLM.instances[0].calls[-1]
    assert call["params"].kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
    assert len(call["prompts"]) == 2  # the empty continuation scores 0 without a request
    for request, score, prompt in zip(requests[:2], scores[:2], call["prompts"], strict=True):
        context_text = tiny_tokenizer.apply_chat_template(
            [{"role": "user", "content": request.context}] if isinstance(request.context, str) else request.context,
            tokenize=False, add_generation_prompt=True)
        context = tiny_tokenizer(context_text, add_special_tokens=isinstance(request.context, str))["input_ids"]
        continuation = tiny_tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
        assert prompt["prompt_token_ids"] == context + continuation
        expected = sum(_logprob(len(context) + i, t) for i, t in enumerate(continuation))
        assert score == pytest.approx(expected)
    assert scores[2] == 0.0


def test_identity_names_backend_model_adapter_and_vllm_version(fake_vllm, tiny_model_dir, lora_dirs):
    from safepeft.models.fingerprint import directory_fingerprint

    base = vllm_backend.vllm_generator(str(tiny_model_dir))
    adapted = vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["a"])
    identity = adapted.identity()
    assert identity["backend"] == "vllm" and identity["vllm"] == "0.0.fake" and identity["dtype"] == "bfloat16"
    assert identity["model"] == directory_fingerprint(tiny_model_dir)
    assert identity["adapter"] == directory_fingerprint(lora_dirs["a"]) and base.identity()["adapter"] is None
    assert {k: v for k, v in base.identity().items() if k != "adapter"} == \
        {k: v for k, v in identity.items() if k != "adapter"}
    chatml = vllm_backend.vllm_generator(str(tiny_model_dir), chat_template="none")
    assert chatml.identity()["chat_template"] != base.identity()["chat_template"]


def test_open_target_records_the_model_and_adapter(fake_vllm, tiny_model_dir, lora_dirs):
    from safepeft.models.backends import BACKENDS
    from safepeft.models.target_spec import TargetSpec

    target = TargetSpec(model=str(tiny_model_dir), adapter=str(lora_dirs["a"]), backend="vllm", batch_size=4)
    opened = BACKENDS.get("vllm")(target, None)
    assert opened.model.params == {"backend": "vllm", "dtype": "bfloat16", "source": "dir", "vllm": "0.0.fake"}
    assert opened.adapter.fingerprint == opened.generator.identity()["adapter"]
    assert "max_num_seqs" not in FakeLLM.instances[0].kwargs  # the HF batch size does not throttle vLLM


def test_what_vllm_cannot_serve_is_a_config_error(fake_vllm, tiny_model_dir, lora_dirs):
    with pytest.raises(ConfigError, match="LoRA adapters only; .* is a IA3 adapter"):
        vllm_backend.vllm_generator(str(tiny_model_dir), lora_dirs["ia3"])
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES=1"):
        vllm_backend.vllm_generator(str(tiny_model_dir), device="cuda:1")
    with pytest.raises(ConfigError, match="--backend hf"):
        vllm_backend.vllm_generator(str(tiny_model_dir), device="cpu")
    engine = vllm_backend.shared_engine(str(tiny_model_dir))
    with pytest.raises(ConfigError, match="rank 40, above this vLLM engine's max_lora_rank 16"):
        engine.generator(lora_dirs["b"])
    config = json.loads((lora_dirs["a"] / "adapter_config.json").read_text())
    assert vllm_backend.lora_rank_for(lora_dirs["a"]) == 16 and config["r"] == 4


def test_missing_vllm_names_the_extra(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    vllm_backend.release()
    with pytest.raises(MissingDependencyError) as error:
        vllm_backend.vllm_generator(str(tiny_model_dir))
    message = error.value.render()
    assert "pip install 'safepeft[vllm]'" in message and "\n" not in message


def test_generate_backend_vllm_runs_on_the_engine(fake_vllm, tiny_model_dir, capsys):
    from safepeft.cli.main import run

    assert run(["generate", "--model", str(tiny_model_dir), "--prompt", "hi", "--backend", "vllm", "--jsonl"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["output"].startswith("base:")
    assert len(FakeLLM.instances) == 1 and len(FakeLLM.instances[0].calls) == 1


def test_generate_backend_vllm_without_vllm_is_one_line(monkeypatch, tiny_model_dir, capsys):
    from safepeft.cli.main import run

    monkeypatch.setitem(sys.modules, "vllm", None)
    vllm_backend.release()
    assert run(["generate", "--model", str(tiny_model_dir), "--prompt", "hi", "--backend", "vllm"]) == 2
    assert capsys.readouterr().err.strip() == ("error: The vllm backend needs the Python package 'vllm', which is not "
                                               "installed. Install it with: pip install 'safepeft[vllm]'")


def test_a_released_engines_generator_says_so(fake_vllm, tiny_model_dir):
    from safepeft.errors import ModelLoadError

    generator = vllm_backend.vllm_generator(str(tiny_model_dir))
    vllm_backend.vllm_generator(str(tiny_model_dir), chat_template="none")  # another engine replaces the first
    with pytest.raises(ModelLoadError, match="was released"):
        generator.generate(["hi"], GenParams())
