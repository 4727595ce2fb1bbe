"""One generic registry per extension point (methods, suites, judges, attacks, quantizers, guards, ...).

Entries are either objects or lazy ``"module:attr"`` strings, so optional dependencies are imported only when an
entry is used. Unknown names get a did-you-mean answer and the list of what is available.

Each registry is typed by its ``base``: every entry must be a subclass of it (``holds="classes"``) or an instance
of it (``holds="instances"``); ``holds="callables"`` takes any callable (functions). A lazy entry can only be
checked once it is imported, so ``get`` checks it then and names the entry, its ``module:attr`` path and the
expected base when it does not fit. The base may itself be lazy (``"module:attr"``): a registry module then does
not import the base's dependencies (torch) just to be listed.

Conventions every typed entry follows (checked by the per-registry contract tests over ``names()``):

- ``spec_class``: the pydantic ``Spec`` of the entry's parameters, when it has any (extra keys are errors).
- capabilities are class attributes, not name lists kept elsewhere (e.g. a fine-tuning method's ``writes``).
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, Literal, TypeVar

from safepeft.errors import ConfigError, UnknownNameError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-.]*$")

Holds = Literal["classes", "instances", "callables"]


def _import(path: str, what: str) -> Any:
    """The object at ``"module:attr"``; a missing attribute is a ConfigError naming ``what`` (import errors of the
    module itself propagate: they usually mean a missing optional package, reported where it is imported)."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{what} points at {path!r}, but {module_name} has no attribute {attr!r}.",
                          "Fix the 'module:attr' path it is registered with.") from None


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Generic[T]):
    """A named collection of plugins of one kind (``kind`` is used in messages, e.g. "judge").

    ``base`` (a type or a lazy ``"module:attr"``) is what entries must be: subclasses of it with ``holds="classes"``,
    instances of it with ``holds="instances"``; ``holds="callables"`` takes no base and checks ``callable(entry)``.
    Without a base (and not ``callables``) entries are unchecked.
    """

    def __init__(self, kind: str, list_command: str | None = None, *, base: type | str | None = None,
                 holds: Holds = "classes") -> None:
        if holds not in ("classes", "instances", "callables") or (holds == "callables" and base is not None):
            raise ConfigError(f"Registry of {kind}s with holds={holds!r} and base={base!r}.",
                              "Use holds='classes' or 'instances' with a base, or holds='callables' without one.")
        self.kind = kind
        self.list_command = list_command or f"safepeft list {kind}s"
        self.holds = holds
        self._base = base
        self._entries: dict[str, T | str] = {}
        self._paths: dict[str, str] = {}
        """Where each lazy entry was registered from (for error messages after it is imported)."""
        self._checked: set[str] = set()

    @property
    def base(self) -> type | None:
        """The base class entries are checked against (imported on first use when registered lazily)."""
        base = self._base
        if isinstance(base, str):
            base = self._base = _import(base, f"The base of the {self.kind} registry")
        return base

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
            if isinstance(obj, str):
                self._paths[name] = obj
            return obj

        def decorator(target: T) -> T:
            self._entries[name] = target
            return target

        return decorator

    def get(self, name: str) -> T:
        """Return the entry, importing it if it was registered lazily, and check it against ``base``."""
        if name not in self._entries:
            raise self.unknown(name)
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _import(entry, f"The {self.kind} {name!r}")
            self._entries[name] = entry
        if name not in self._checked:
            self._check(name, entry)
            self._checked.add(name)
        return entry

    def _check(self, name: str, entry: Any) -> None:
        base = self.base
        if self.holds == "callables":
            fits, expected = callable(entry), "a callable"
        elif base is None:
            return
        elif self.holds == "classes":
            fits, expected = isinstance(entry, type) and issubclass(entry, base), f"a subclass of {_qualname(base)}"
        else:
            fits, expected = isinstance(entry, base), f"an instance of {_qualname(base)}"
        if not fits:
            where = f" (registered as {self._paths[name]!r})" if name in self._paths else ""
            got = _qualname(entry) if isinstance(entry, type) else f"a {_qualname(type(entry))}"
            raise ConfigError(f"The {self.kind} {name!r}{where} is {got}, not {expected}.",
                              f"Register {expected} under {name!r}.")

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
