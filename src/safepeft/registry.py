"""One generic registry per extension point (methods, suites, judges, attacks, quantizers, guards, ...).

Entries are either objects or lazy ``"module:attr"`` strings, so optional dependencies are imported only when an
entry is used. Unknown names get a did-you-mean answer and the list of what is available.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from safepeft.errors import ConfigError, UnknownNameError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-.]*$")


class Registry(Generic[T]):
    """A named collection of plugins of one kind (``kind`` is used in messages, e.g. "judge")."""

    def __init__(self, kind: str, list_command: str | None = None) -> None:
        self.kind = kind
        self.list_command = list_command or f"safepeft list {kind}s"
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T | str:
        """Register ``obj`` under ``name``; without ``obj`` this is a decorator."""
        if not _NAME.match(name):
            raise ConfigError(
                f"Invalid {self.kind} name {name!r}.", "Names are lower-case letters, digits, '-', '_' or '.'."
            )
        if name in self._entries:
            raise ConfigError(f"A {self.kind} named {name!r} is already registered.", "Pick a different name.")
        if obj is not None:
            self._entries[name] = obj
            return obj

        def decorator(target: T) -> T:
            self._entries[name] = target
            return target

        return decorator

    def get(self, name: str) -> T:
        """Return the entry, importing it if it was registered lazily."""
        if name not in self._entries:
            raise self.unknown(name)
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def unknown(self, name: str) -> UnknownNameError:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        did_you_mean = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return UnknownNameError(
            f"Unknown {self.kind} {name!r}.{did_you_mean}",
            f"Available: {', '.join(self.names()) or '(none)'} (see `{self.list_command}`).",
        )

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def describe(obj: object) -> str:
    """First line of an entry's ``description`` attribute or docstring, for `safepeft list`."""
    text = getattr(obj, "description", None) or (obj.__doc__ or "")
    return text.strip().splitlines()[0] if text.strip() else ""
