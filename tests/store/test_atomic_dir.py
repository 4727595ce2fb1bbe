"""atomic_dir: a directory appears whole or not at all; an existing one is replaced only on success."""

import pytest

from safepeft.store.atomic import atomic_dir


def test_success_replaces_the_old_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
        assert not (target / "sub").exists()  # nothing visible before the block ends
    assert sorted(p.name for p in target.rglob("*")) == ["new.txt", "sub"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp or moved-aside dirs left


def test_error_leaves_the_old_directory_and_no_temp(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
