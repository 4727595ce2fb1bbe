"""Which warnings reach the user of the CLI, and which fail the tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import safepeft
from safepeft.cli import main as cli_main

# A file inside the package: warnings attributed to it are safepeft's own.
OURS = str(Path(safepeft.__file__).parent / "finetune" / "salora" / "build.py")


def _emit_all(debug: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple[type[Warning], str]]:
    """Configure warnings as main() does, emit every known library note, another library's note and one of ours;
    return what went to the library display (ours go to stderr)."""
    shown: list[tuple[type[Warning], str]] = []
    monkeypatch.setattr(cli_main, "_LIBRARY_SHOW", lambda message, category, *rest: shown.append((category,
                                                                                                  str(message))))
    for name in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS", "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(name, "restored after the test")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        cli_main._quiet_libraries(debug)
        for category, module, message in cli_main.LIBRARY_NOISE:
            warnings.warn_explicit(f"{message} (and the rest of the note)", category, "lib.py", 1,
                                   module=f"{module}.submodule")
        warnings.warn_explicit("a note from a library nobody listed", FutureWarning, "lib.py", 1, module="otherlib")
        warnings.warn_explicit("calibration saw too few tokens", UserWarning, OURS, 1,
                               module="safepeft.finetune.salora.build")
    return shown


def test_only_the_listed_library_notes_are_hidden_and_ours_are_one_line(monkeypatch, capsys):
    shown = _emit_all(False, monkeypatch)
    assert shown == [(FutureWarning, "a note from a library nobody listed")]
    assert capsys.readouterr().err == "warning: calibration saw too few tokens\n"


def test_debug_shows_the_library_notes_too(monkeypatch, capsys):
    shown = _emit_all(True, monkeypatch)
    assert [category for category, _ in shown] == [c for c, _, _ in cli_main.LIBRARY_NOISE] + [FutureWarning]
    assert capsys.readouterr().err == "warning: calibration saw too few tokens\n"


@pytest.mark.parametrize("category", [FutureWarning, DeprecationWarning])
def test_a_deprecation_raised_by_safepeft_code_fails_the_tests(category):
    # pyproject's filterwarnings: an API safepeft calls is going away; a library's own deprecations stay warnings.
    with pytest.raises(category):
        warnings.warn_explicit("old keyword", category, OURS, 1, module="safepeft.models.hf")
    with pytest.warns(category):
        warnings.warn_explicit("old keyword", category, "lib.py", 1, module="otherlib")
