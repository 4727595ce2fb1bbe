import pytest

from safepeft.errors import ConfigError, UnknownNameError
from safepeft.registry import Registry


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
