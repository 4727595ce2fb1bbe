"""End to end on the embedded SmolLM2: base = embedded (GGUF, streamed from its cached safetensors conversion),
aligned = `safepeft align` output (shared session fixture), adapter = a short LoRA fine-tune of the aligned model."""

import json

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_safelora_and_splora_on_embedded(aligned_embedded_dir, tmp_path):
    from safepeft.models.loader import load_model
    from safepeft.records import GenParams

    adapter = tmp_path / "adapter"
    invoke("train", "--model", aligned_embedded_dir, "--method", "lora", "--data", "builtin:identity-shift",
           "--max-steps", 2, "--batch-size", 2, "--max-length", 128, "--lr", 1e-3, "--out", adapter)
    for method, extra in (("safelora", []), ("splora", ["--reference", "shape"])):
        out = tmp_path / method
        invoke("repair", method, "--base", "embedded", "--aligned", aligned_embedded_dir, "--adapter", adapter,
               "--out", out, "--mode", "number", "--k", 10, *extra)
        report = json.loads((out / "safepeft_repair.json").read_text())
        modules = report["modules"]
        assert len(modules) >= 10 and all(m["action"] != "skipped" for m in modules)
        assert all(m["score"] is not None and m["details"]["v_norm"] > 0 for m in modules)
        acted = [m for m in modules if m["action"] in ("projected", "pruned")]
        assert len(acted) == 10
        if method == "safelora":
            scores = sorted(m["score"] for m in modules)
            assert max(m["score"] for m in acted) == scores[9] and 0 < report["summary"]["pdst"] <= 1
        else:
            assert report["summary"]["params_removed"] > 0 and report["summary"]["flops_per_token_removed"] > 0
        print(f"{method}: {report['summary']}")
        loaded = load_model(str(aligned_embedded_dir), adapter=out)
        [text] = loaded.generator(batch_size=1, progress=False).generate(["Say hi."], GenParams(max_new_tokens=4))
        assert isinstance(text, str)
