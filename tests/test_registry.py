"""Registries: decorator registration, helpful unknown-name errors, entry points."""

from __future__ import annotations

from importlib import metadata

import pytest

from memsim.registry import Registry, UnknownNameError


def test_register_and_get():
    reg = Registry("widget")

    @reg.register("write_verify")
    class WriteVerify:
        pass

    assert reg.get("write_verify") is WriteVerify
    assert reg.names() == ["write_verify"] and "write_verify" in reg and len(reg) == 1


def test_unknown_name_lists_known_and_suggests_closest():
    reg = Registry("policy")
    reg.register("write_verify", object())
    reg.register("baseline", object())
    with pytest.raises(UnknownNameError) as exc:
        reg.get("write_verfy")
    msg = str(exc.value)
    assert "Did you mean 'write_verify'" in msg and "baseline" in msg


def test_duplicate_registration_is_an_error():
    reg = Registry("policy")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)


def test_entry_points_are_loaded_lazily(monkeypatch):
    ep = metadata.EntryPoint(name="plugged", value="collections:OrderedDict", group="memsim.test")

    def fake_entry_points(group=None):
        return [ep] if group == "memsim.test" else []

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    reg = Registry("thing", entry_point_group="memsim.test")
    from collections import OrderedDict

    assert reg.get("plugged") is OrderedDict
