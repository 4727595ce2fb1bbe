"""Reading the text files users hand us (prompts, labels, data): one-line errors instead of decoder tracebacks."""

from __future__ import annotations

from pathlib import Path

from safepeft.errors import DataError


def read_user_text(path: str | Path, what: str) -> str:
    """A user's UTF-8 text file, or a DataError naming the file and the first byte that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}.", "Check the path.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1]
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start} is {bad!r}).",
                        "Re-save it as UTF-8.") from None
