"""The generic Registry (names, lazy entries, did-you-mean, typed bases) and one contract over every registry's
entries: each resolves to what its registry holds, is registered under its own name, and its `spec_class` (the one
name for an entry's parameters) is a strict, documented spec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from safepeft.cli.list_cmd import REGISTRIES as LISTED
from safepeft.cli.list_cmd import load_registry
from safepeft.errors import ConfigError, UnknownNameError
from safepeft.records.base import Spec
from safepeft.registry import Registry
from safepeft.study.builtin import BUILTIN_STUDIES

# every registry `safepeft list` shows (so one added there is covered here), and the built-in studies
REGISTRIES = {kind: load_registry(kind) for kind in LISTED} | {"study": BUILTIN_STUDIES}
ENTRIES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]
TYPED = {"method", "suite", "judge", "attack", "repair", "quantizer", "guard"}
"""The stage registries: their entries have a base class. Backends, report formats and studies hold functions; the
hardeners hold one class; datasets and step kinds are checked here only for resolving and naming."""


class Widget:
    """A base for the tests."""


class Gadget(Widget):
    pass


GADGET = Gadget()


def test_register_get_and_lazy_entries():
    reg: Registry = Registry("widget")
    reg.register("alpha", 1)

    @reg.register("beta")
    def beta():
        """Beta widget."""

    reg.register("lazy", "json:dumps")
    assert reg.get("alpha") == 1
    assert reg.get("beta") is beta
    import json

    assert reg.get("lazy") is json.dumps
    assert reg.names() == ["alpha", "beta", "lazy"]


def test_unknown_name_suggests_close_match():
    reg: Registry = Registry("repair method", "safepeft list repairs")
    reg.register("safelora", 1)
    reg.register("splora", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("safelora2")
    text = str(info.value)
    assert "Did you mean 'safelora'" in text
    assert "Available: safelora, splora" in text


def test_duplicate_and_bad_names_rejected():
    reg: Registry = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", 2)
    with pytest.raises(ConfigError, match="Invalid widget name"):
        reg.register("Bad Name", 3)


def test_class_registry_checks_lazy_entries_against_a_lazy_base():
    reg: Registry[type[Widget]] = Registry("widget", base=f"{__name__}:Widget")
    reg.register("gadget", f"{__name__}:Gadget")
    reg.register("wrong", "json:JSONDecoder")
    reg.register("instance", f"{__name__}:GADGET")
    assert reg.get("gadget") is Gadget and reg.base is Widget
    with pytest.raises(ConfigError) as info:
        reg.get("wrong")
    text = str(info.value)
    assert "widget 'wrong' (registered as 'json:JSONDecoder') is json.decoder.JSONDecoder" in text
    assert f"not a subclass of {__name__}.Widget" in text
    with pytest.raises(ConfigError, match=f"'instance' .* is a {__name__}.Gadget, not a subclass"):
        reg.get("instance")  # an instance is not what a class registry holds


def test_instance_registry_rejects_a_class_and_callable_registry_a_value():
    reg: Registry[Widget] = Registry("widget", base=Widget, holds="instances")
    reg.register("good", GADGET)
    reg.register("class", Gadget)
    assert reg.get("good") is GADGET
    with pytest.raises(ConfigError, match=f"not an instance of {__name__}.Widget"):
        reg.get("class")
    functions: Registry = Registry("hook", holds="callables")
    functions.register("ok", len)
    functions.register("number", 3)
    assert functions.get("ok") is len
    with pytest.raises(ConfigError, match="hook 'number' is a builtins.int, not a callable"):
        functions.get("number")


def test_missing_attribute_and_bad_construction_are_config_errors():
    reg: Registry = Registry("widget")
    reg.register("gone", "json:no_such_thing")
    with pytest.raises(ConfigError, match="'json:no_such_thing', but json has no attribute 'no_such_thing'"):
        reg.get("gone")
    with pytest.raises(ConfigError, match="holds='callables' without one"):
        Registry("widget", base=Widget, holds="callables")


def test_every_stage_registry_is_typed():
    for kind in TYPED:
        assert REGISTRIES[kind].base is not None, kind
    assert REGISTRIES["backend"].holds == BUILTIN_STUDIES.holds == "callables"


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_registry_entry_contract(kind, name):
    registry = REGISTRIES[kind]
    entry = registry.get(name)  # the base check runs here
    if kind in TYPED:
        cls = entry if registry.holds == "classes" else type(entry)
        assert issubclass(cls, registry.base)
    if kind != "suite" and hasattr(entry, "name"):  # a suite's name is given when it is built
        assert entry.name == name
    assert not any(hasattr(entry, old) for old in ("spec_type", "spec_cls", "config_class"))
    spec_class = getattr(entry, "spec_class", None)
    if spec_class is None:
        return
    assert issubclass(spec_class, Spec)
    spec_class()  # every parameter has a default
    assert all(field.description for field in spec_class.model_fields.values())
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        spec_class(no_such_option=1)


def test_entries_with_parameters_name_them_spec_class():
    """Every family whose entries take parameters declares them under the one name."""
    with_specs = {kind for kind, name in ENTRIES if getattr(REGISTRIES[kind].get(name), "spec_class", None)}
    assert with_specs == {"method", "attack", "repair", "hardener", "guard"}
