"""`safepeft repair resta|safemerge|safedelta` and `safepeft harden lox` from the command line."""

import json
import shutil

import pytest
import torch
from menu_helpers import build_family
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from safepeft.cli.main import app, run

runner = CliRunner()


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("cli-menu"))


def args(family, out):
    return ["--base", str(family.base), "--aligned", str(family.aligned), "--adapter", str(family.adapter),
            "--out", str(out)]


def test_resta_and_safedelta_write_loadable_models(family, tmp_path):
    from safepeft.models.loader import load_model

    for method, extra in (("resta", ["--beta", "0.3"]), ("safedelta", ["--scale", "0.01", "--max-samples", "8"])):
        result = runner.invoke(app, ["repair", method, *args(family, tmp_path / method), *extra, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["output"] == "model"
        loaded = load_model(str(tmp_path / method))
        assert all(bool(torch.isfinite(p).all()) for p in loaded.model.parameters())
    assert summary["curvature"]["conversations"] == 8 and 0 < summary["kept_fraction_mean"] < 1


def test_safemerge_with_a_given_safety_adapter(triple, tmp_path):
    safety = tmp_path / "safety"
    shutil.copytree(triple.adapter, safety)
    tensors = load_file(safety / "adapter_model.safetensors")
    save_file({k: torch.randn(v.shape) for k, v in tensors.items()}, safety / "adapter_model.safetensors")
    result = runner.invoke(app, ["repair", "safemerge", "--base", str(triple.base), "--aligned", str(triple.aligned),
                                 "--adapter", str(triple.adapter), "--out", str(tmp_path / "merged"),
                                 "--safety-adapter", str(safety)])
    assert result.exit_code == 0, result.output
    assert f"{len(triple.misaligned)} of 12 adapter modules merged" in result.stdout


def test_bad_beta_is_one_line_and_exit_2(family, tmp_path, capsys):
    code = run(["repair", "resta", *args(family, tmp_path / "out"), "--beta", "1e39"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "RESTA with beta=1e+39 makes" in err[0] and "non-finite" in err[0]
    assert not (tmp_path / "out").exists()
