"""LoX: W_aligned + α·P_k(W_aligned − W_base); α = 0 is the identity, P_k is the truncated SVD; bad inputs refused."""

import json

import pytest
import torch
from menu_helpers import build_family, load_weights
from typer.testing import CliRunner

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.repair import harden_model
from safepeft.repair.lowrank import truncated_svd
from safepeft.repair.lox import lox_weight


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("lox"))


def harden(family, out, **spec):
    return harden_model("lox", base=str(family.base), aligned=str(family.aligned), out=out, spec=spec,
                        progress=False)


def test_alpha_zero_is_the_identity(family, tmp_path):
    report = harden(family, tmp_path / "out", k=2, alpha=0.0)
    written, aligned = load_weights(tmp_path / "out"), load_weights(family.aligned)
    assert set(written) == set(aligned) and all(torch.equal(written[n], aligned[n]) for n in aligned)
    assert report.summary["extrapolated"] == report.summary["matrices"] == 14  # 2 layers x 7 linear weights


def test_projection_is_the_truncated_svd():
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(23, 9, generator=gen) @ torch.diag(torch.tensor([2.0 ** -i for i in range(9)])) @ \
        torch.linalg.qr(torch.randn(9, 17, generator=gen).T)[0].T  # (23, 17), spectrum 1, 1/2, 1/4 ...
    w = torch.randn(23, 17, generator=gen)
    new, factors = lox_weight(w, v, 3, 1.5, "exact")
    u, s, vh = torch.linalg.svd(v.double(), full_matrices=False)
    p3 = (u[:, :3] * s[:3]) @ vh[:3]
    torch.testing.assert_close((new - w).double() / 1.5, p3, rtol=0, atol=1e-5)
    expected_error = float(torch.linalg.matrix_norm(v.double() - p3) / torch.linalg.matrix_norm(v.double()))
    assert factors.relative_error == pytest.approx(expected_error, rel=1e-4)
    randomized = truncated_svd(v, 3, "randomized", oversample=4, iters=4)
    torch.testing.assert_close((randomized.left @ randomized.right).double(), p3, rtol=0, atol=1e-4)


def test_extrapolation_with_k_at_the_rank_doubles_the_update(family, tmp_path):
    harden(family, tmp_path / "out", k=3, alpha=1.0, targets=["q_proj"])
    written, aligned, base = load_weights(tmp_path / "out"), load_weights(family.aligned), load_weights(family.base)
    for name in aligned:
        if name.endswith("q_proj.weight"):  # V has rank 3: P_3(V) = V, so W = aligned + V
            torch.testing.assert_close(written[name], 2 * aligned[name] - base[name], rtol=0, atol=1e-6)
        else:
            assert torch.equal(written[name], aligned[name])


def test_k_larger_than_the_rank_is_refused(family, tmp_path):
    first = r"model.layers.0.mlp.down_proj.weight \(numerical rank 3"  # the first matrix streamed; V has rank 3
    with pytest.raises(ConfigError, match=rf"k=5 is larger than the rank of the alignment update of {first}"):
        harden(family, tmp_path / "out", k=5, svd="exact")
    with pytest.raises(ConfigError, match=r"k=40 is larger than the rank bound"):
        harden(family, tmp_path / "out", k=40)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_unrelated_aligned_model_is_refused(family, tmp_path):
    stranger = build_family(tmp_path / "other", seed=5)
    with pytest.raises(IncompatibleArtifactError, match="does not look like a descendant"):
        harden_model("lox", base=str(stranger.base), aligned=str(family.aligned), out=tmp_path / "out",
                     progress=False)
    assert not (tmp_path / "out").exists()


def test_harden_cli_writes_a_loadable_model(family, tmp_path):
    from safepeft.cli.main import app
    from safepeft.models.loader import load_model

    result = CliRunner().invoke(app, ["harden", "lox", "--base", str(family.base), "--aligned", str(family.aligned),
                                      "--out", str(tmp_path / "hard"), "--k", "2", "--alpha", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["extrapolated"] == 14
    record = json.loads((tmp_path / "hard" / "safepeft_harden.json").read_text())
    assert record["method"] == "lox" and all(0 < m["details"]["fraction_of_update_held"] <= 1
                                             for m in record["modules"])
    loaded = load_model(str(tmp_path / "hard"))
    assert sum(p.numel() for p in loaded.model.parameters()) > 0
