"""Error hierarchy: every known failure says what was wrong, what was expected and how to fix it.

The CLI turns any ``SafepeftError`` into one line on stderr and exit code 2; anything else is a bug and exits 1.
"""

from __future__ import annotations


class SafepeftError(Exception):
    """Base class for errors a user can fix. ``hint`` is the how-to-fix part of the message."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(SafepeftError):
    """A value or a combination of options is not allowed."""


class UnknownNameError(SafepeftError):
    """A registry lookup failed; the message lists close matches and what is available."""


class MissingDependencyError(SafepeftError):
    """An optional package is needed; the message carries the pip command."""


class IncompatibleArtifactError(SafepeftError):
    """Two artifacts (model, adapter, aligned reference) do not fit together."""


class ModelLoadError(SafepeftError):
    """A model or tokenizer could not be read from where the spec points."""


class PickleRefusedError(ModelLoadError):
    """Weights exist only in a pickle format (.bin/.pt/.pth), which safepeft never loads."""


class NonFiniteWeightsError(SafepeftError):
    """A model or adapter holds NaN or Inf weights: an error, never a result."""


class DataError(SafepeftError):
    """Input data is missing, malformed or in an unknown format."""


class ResumeError(SafepeftError):
    """A run directory cannot be resumed (schema too new, different inputs)."""


def missing_dependency(package: str, purpose: str, pip_spec: str | None = None) -> MissingDependencyError:
    """Build the standard 'install this' error."""
    return MissingDependencyError(
        f"{purpose} needs the Python package '{package}', which is not installed.",
        f"Install it with: pip install {pip_spec or package}",
    )
