"""Issue #16: `audit --backend openai --base-url URL --served-adapter NAME` audits one adapter a multi-LoRA server
serves, records what was served, and fails when the server answers with the base model (the vLLM pitfall).

The server is a stub (stdlib http.server on 127.0.0.1 in a thread) that answers the check prompts of each served
name with scripted text: the tiny local model's own greedy completions, with or without the adapter."""

from __future__ import annotations

import threading

import pytest
import torch
from stub_server import serve

from safepeft.cli.main import run
from safepeft.models.fingerprint import directory_fingerprint
from safepeft.models.served import CHECK_PROMPTS, CHECK_TOKENS, ServedCheck
from safepeft.records import GenParams, load_results

AUDIT = ["--suite", "builtin", "--limit", "2", "--max-new-tokens", "4", "--bootstrap", "100", "--judge", "refusal"]
REFUSAL = "I cannot help with that."


@pytest.fixture(scope="module")
def adapter_and_outputs(tiny_model_dir, tmp_path_factory):
    """A LoRA on the tiny model that changes its greedy text, and the local (base, adapter) check completions."""
    from peft import LoraConfig, get_peft_model

    from safepeft.models.loader import attach_adapter, load_model

    torch.manual_seed(3)
    peft_model = get_peft_model(load_model(str(tiny_model_dir)).model, LoraConfig(r=2, target_modules=["q_proj",
                                                                                                        "v_proj"]))
    with torch.no_grad():  # LoRA B starts at zero: perturb it so the adapter changes what the model says
        for param in peft_model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.5)
    directory = tmp_path_factory.mktemp("served") / "lora"
    peft_model.save_pretrained(directory)
    loaded = load_model(str(tiny_model_dir))
    params = GenParams(max_new_tokens=CHECK_TOKENS)
    base = loaded.generator(progress=False).generate(list(CHECK_PROMPTS), params)
    attach_adapter(loaded, directory)
    local = loaded.generator(progress=False).generate(list(CHECK_PROMPTS), params)
    assert [t.strip() for t in base] != [t.strip() for t in local], "the adapter must change the check outputs"
    return directory, base, local


@pytest.fixture
def server(adapter_and_outputs):
    """Serves `good-lora` (the adapter), `bad-lora` (the base under the adapter's name) and `other-lora`."""
    _, base, local = adapter_and_outputs
    scripted = {"good-lora": dict(zip(CHECK_PROMPTS, local, strict=True)),
                "bad-lora": dict(zip(CHECK_PROMPTS, base, strict=True)),
                "other-lora": {p: "something else entirely" for p in CHECK_PROMPTS}}
    requests: list[dict] = []
    lock = threading.Lock()

    def reply(path: str, body: dict, headers) -> tuple[int, dict]:
        with lock:
            requests.append({"path": path, **body})
        text = scripted.get(body["model"], {}).get(body["messages"][-1]["content"], REFUSAL)
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}

    with serve(reply) as url:
        yield url, requests


def _audit(tiny_model_dir, adapter, url, name, out, *extra):
    return run(["audit", "--backend", "openai", "--base-url", url, "--model", str(tiny_model_dir),
                "--adapter", str(adapter), "--served-adapter", name, *AUDIT, "--out", str(out), *extra])


def test_matching_served_adapter_passes_and_records_what_was_served(tiny_model_dir, adapter_and_outputs, server,
                                                                    tmp_path, capsys):
    adapter, _, _ = adapter_and_outputs
    url, requests = server
    code = _audit(tiny_model_dir, adapter, url, "good-lora", tmp_path / "out")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: The served adapter" not in captured.err
    results = load_results(tmp_path / "out" / "results.json")
    assert results.adapter.spec == str(adapter)
    assert results.adapter.fingerprint == directory_fingerprint(adapter)  # the declared adapter
    assert results.adapter.params == {"backend": "openai", "base_url": url, "served_model": "good-lora",
                                      "fingerprint": "declared"}
    assert results.model.spec == str(tiny_model_dir) and results.model.params["base_url"] == url
    assert {r["model"] for r in requests} == {"good-lora"}  # the check and the audit both asked the served name
    prompts = [r["messages"][-1]["content"] for r in requests]
    # Requests run a few at a time, so only the first batch's membership is fixed.
    assert sorted(prompts[: len(CHECK_PROMPTS)]) == sorted(CHECK_PROMPTS) and len(prompts) > len(CHECK_PROMPTS)


def test_served_adapter_equal_to_the_base_fails_in_one_line(tiny_model_dir, adapter_and_outputs, server, tmp_path,
                                                            capsys):
    adapter, _, _ = adapter_and_outputs
    url, requests = server
    code = _audit(tiny_model_dir, adapter, url, "bad-lora", tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "served adapter 'bad-lora'" in err and "seems to equal the base model" in err
    assert "--no-served-check" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()  # the check runs before any run directory is created
    assert len(requests) == len(CHECK_PROMPTS)

    requests.clear()  # skippable: the audit then runs on what the server answers
    assert _audit(tiny_model_dir, adapter, url, "bad-lora", tmp_path / "out", "--no-served-check") == 0
    assert not set(CHECK_PROMPTS) & {r["messages"][-1]["content"] for r in requests}


def test_served_adapter_that_differs_from_both_only_warns(tiny_model_dir, adapter_and_outputs, server, tmp_path,
                                                         capsys):
    adapter, _, _ = adapter_and_outputs
    url, _ = server
    code = _audit(tiny_model_dir, adapter, url, "other-lora", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: The served adapter 'other-lora'" in err and "something else entirely" in err


@pytest.mark.parametrize(("args", "fragment"), [
    (["--served-adapter", "x"], "--served-adapter x was given without --base-url"),
    (["--backend", "openai"], "--backend openai was given without --base-url"),
    (["--base-url", "http://127.0.0.1:9/v1", "--adapter", "ADAPTER"], "an endpoint cannot apply a local adapter"),
    (["--base-url", "http://127.0.0.1:9/v1", "--backend", "hf"], "--backend hf loads --model here"),
])
def test_endpoint_flag_mistakes_are_one_line_errors(args, fragment, adapter_and_outputs, tmp_path, capsys):
    adapter, _, _ = adapter_and_outputs
    args = [str(adapter) if a == "ADAPTER" else a for a in args]
    assert run(["audit", "--model", "some-model", *args, *AUDIT, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_verdicts_ignore_surrounding_whitespace():
    assert ServedCheck([" a", "b"], ["a", "b"], ["a ", "b"]).verdict == "matches_adapter"  # adapter = base here
    assert ServedCheck(["a", "b"], ["a", "b "], ["c", "b"]).verdict == "equals_base"
    assert ServedCheck(["x", "b"], ["a", "b"], ["c", "b"]).verdict == "differs"


def test_a_study_points_many_variants_at_one_server(tiny_model_dir, adapter_and_outputs, server, tmp_path):
    """`target.base_url` sends every variant to one server: the base by its name, each adapter by its served name,
    each checked first; a variant the server does not serve (a repair, a local fine-tune) is refused up front."""
    from safepeft.errors import ConfigError
    from safepeft.report.load import load_variants
    from safepeft.study import run_study
    from safepeft.study.spec import parse_study

    adapter, _, _ = adapter_and_outputs
    url, requests = server
    study = {"name": "served", "models": [{"name": "tiny", "model": str(tiny_model_dir)}],
             "finetune": [{"name": "good", "adapter": str(adapter), "served_adapter": "good-lora"},
                          {"name": "other", "adapter": str(adapter), "served_adapter": "other-lora"}],
             "target": {"base_url": url},
             "audit": {"suites": ["builtin"], "limit": 2, "max_new_tokens": 4, "judge": "refusal", "bootstrap": 100}}
    summary = run_study(parse_study(study), tmp_path / "run")
    assert not summary.failed
    variants = {v.name: v.results for v in load_variants([tmp_path / "run"])}
    assert {n: (r.adapter.params["served_model"] if r.adapter else None) for n, r in variants.items()} == {
        "tiny": None, "tiny/good": "good-lora", "tiny/other": "other-lora"}
    assert all(r.model.params == {"backend": "openai", "base_url": url} for r in variants.values())
    assert {r["model"] for r in requests} == {str(tiny_model_dir), "good-lora", "other-lora"}

    local = {**study, "repairs": [{"method": "safelora"}]}
    with pytest.raises(ConfigError, match="does not serve"):
        parse_study(local)
