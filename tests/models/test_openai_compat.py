"""OpenAICompatGenerator against a local stub server (stdlib http.server on 127.0.0.1 in a thread)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from stub_server import serve

from safepeft.errors import ConfigError, ModelLoadError
from safepeft.models.openai_compat import OpenAICompatGenerator
from safepeft.records import GenParams, LoglikelihoodRequest

SECRET = "sk-test-do-not-leak-123"


class Stub:
    """Scripted server: records requests; `script` is a list of (status, body) consumed first, then echo."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict | str]] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def reply(self, path: str, body: dict) -> tuple[int, dict | str]:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        if path.endswith("/chat/completions"):
            text = "echo: " + body["messages"][-1]["content"]
            return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}
        return 200, {"choices": [{"text": "raw: " + body["prompt"][-10:]}]}


@pytest.fixture
def stub():
    state = Stub()

    def reply(path: str, body: dict, headers) -> tuple[int, dict | str]:
        with state.lock:
            state.requests.append({"path": path, "body": body, "auth": headers.get("Authorization")})
        time.sleep(state.delay)
        return state.reply(path, body)

    with serve(reply) as url:
        state.url = url
        yield state


def test_chat_completions_in_order_with_system_prompt_and_key(stub, monkeypatch):
    monkeypatch.setenv("STUB_KEY", SECRET)
    gen = OpenAICompatGenerator(stub.url, "judge-model", api_key_env="STUB_KEY", concurrency=3)
    prompts = [f"question {i}" for i in range(7)]
    outputs = gen.generate(prompts, GenParams(max_new_tokens=5, system_prompt="Be brief."))
    assert outputs == [f"echo: question {i}" for i in range(7)]
    first = stub.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == f"Bearer {SECRET}"
    assert first["body"]["model"] == "judge-model" and first["body"]["max_tokens"] == 5
    assert first["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["body"]["temperature"] == 0.0


def test_raw_prompts_use_the_completions_endpoint_and_stop_strings(stub):
    gen = OpenAICompatGenerator(stub.url, "m")
    out = gen.generate(["[INST] classify this [/INST]"], GenParams(chat=False, stop=["INST"]))
    assert stub.requests[0]["path"] == "/v1/completions" and stub.requests[0]["auth"] is None
    assert stub.requests[0]["body"]["stop"] == ["INST"]
    assert out == ["raw: is [/"]  # the last 10 prompt characters, cut locally at the stop string too


def test_retries_transient_errors_then_succeeds(stub):
    stub.script = [(503, {"error": "busy"}), (429, {"error": "slow down"})]
    gen = OpenAICompatGenerator(stub.url, "m", backoff=0.01, max_retries=3)
    assert gen.generate(["hi"], GenParams()) == ["echo: hi"]
    assert len(stub.requests) == 3


def test_gives_up_after_max_retries_with_a_clear_error(stub):
    stub.script = [(500, "oops")] * 5
    gen = OpenAICompatGenerator(stub.url, "m", backoff=0.01, max_retries=2)
    with pytest.raises(ModelLoadError, match="failed after 3 attempts"):
        gen.generate(["hi"], GenParams())


def test_timeout_is_retried_and_reported(stub):
    stub.delay = 0.5
    gen = OpenAICompatGenerator(stub.url, "m", timeout=0.1, backoff=0.01, max_retries=1)
    with pytest.raises(ModelLoadError, match="failed after 2 attempts"):
        gen.generate(["hi"], GenParams())


def test_auth_failure_never_shows_the_key(stub, monkeypatch):
    monkeypatch.setenv("STUB_KEY", SECRET)
    stub.script = [(401, {"error": "bad key"})]
    gen = OpenAICompatGenerator(stub.url, "m", api_key_env="STUB_KEY")
    with pytest.raises(ConfigError) as info:
        gen.generate(["hi"], GenParams())
    assert "STUB_KEY" in str(info.value) and SECRET not in str(info.value)
    assert SECRET not in repr(vars(gen)) and SECRET not in json.dumps(gen.identity())


def test_missing_key_variable_and_bad_url_are_config_errors(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        OpenAICompatGenerator("http://127.0.0.1:1/v1", "m", api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(ConfigError, match="base URL"):
        OpenAICompatGenerator("127.0.0.1:8000", "m")


def test_loglikelihood_is_refused_clearly(stub):
    gen = OpenAICompatGenerator(stub.url, "m")
    with pytest.raises(ConfigError, match="log-likelihood"):
        gen.loglikelihood([LoglikelihoodRequest(context="a", continuation="b")])


def test_registered_as_a_backend_and_cacheable(stub, tmp_path):
    from safepeft.models.backends import BACKENDS
    from safepeft.models.cached import CachedGenerator
    from safepeft.models.target_spec import TargetSpec
    from safepeft.store import RunStore

    opened = BACKENDS.get("openai")(TargetSpec(model="m", base_url=stub.url), None)
    assert isinstance(opened.generator, OpenAICompatGenerator)
    assert opened.model.params == {"backend": "openai", "base_url": stub.url} and opened.adapter is None
    cached = CachedGenerator(OpenAICompatGenerator(stub.url, "m"), RunStore(tmp_path), progress=False)
    assert cached.generate(["a", "b"], GenParams()) == ["echo: a", "echo: b"]
    assert cached.generate(["a", "b"], GenParams()) == ["echo: a", "echo: b"]
    assert len(stub.requests) == 2  # the second call came from the store
