"""One registry type and one set of rules for every plug-in kind (#34)."""

from __future__ import annotations

import pytest

from redundancy.engine.screening import MODES
from redundancy.errors import ConfigError
from redundancy.models import FAMILIES, REGISTRY
from redundancy.registry import Registry, UnknownName
from redundancy.tasks.base import TASKS
from redundancy.training.demo import RECIPES


@pytest.mark.parametrize("registry", [FAMILIES, REGISTRY, TASKS, MODES, RECIPES], ids=lambda r: r.kind)
def test_every_plugin_kind_is_one_registry_type(registry):
    assert isinstance(registry, Registry) and registry.names() == tuple(registry)
    with pytest.raises(UnknownName) as err:
        registry["no such thing"]
    assert str(err.value).startswith(f"unknown {registry.kind} 'no such thing'; choose one of: ")
    assert all(name in str(err.value) for name in registry.names())


@pytest.mark.parametrize("registry", [FAMILIES, REGISTRY, TASKS, MODES, RECIPES], ids=lambda r: r.kind)
def test_a_second_registration_of_a_name_raises_and_keeps_the_first(registry):
    name = registry.names()[0]
    first = registry[name]
    with pytest.raises(ValueError, match=f"'{name}' is registered twice"):
        registry.add(name, object())
    assert registry[name] is first


def test_order_and_errors():
    """Items stay in their order key; an unknown name is a ConfigError a UI shows verbatim, an unhashable one too."""
    r: Registry[int] = Registry("number", order=lambda n: -n)
    for name, n in (("one", 1), ("three", 3), ("two", 2)):
        r.add(name, n)
    assert r.names() == ("three", "two", "one") and len(r) == 3 and "two" in r and "four" not in r
    with pytest.raises(ConfigError, match="unknown number"):
        r[["a list"]]  # type: ignore[index]
