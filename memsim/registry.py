"""Registries for plug-ins: workloads, policies, noise engines.

A registry is a dict filled by a decorator::

    POLICIES = Registry("policy", entry_point_group="memsim.policies")

    @POLICIES.register("write_verify")
    class WriteVerify: ...

Outside packages add entries without editing memsim by declaring an entry point in the group
(``[project.entry-points."memsim.policies"] mine = "mypkg.policies:MyPolicy"``); they are loaded
the first time the registry is looked up. An unknown name is an error listing the known names
and suggesting the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name was looked up that no plug-in registered."""


class Registry(Generic[T]):
    """Name → object mapping with entry-point discovery and helpful lookup errors."""

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        on_add: Callable[[str, T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        #: Called with ``(name, obj)`` for every entry, registered or from an entry point.
        self.on_add = on_add
        self._items: dict[str, T] = {}
        self._entry_points_loaded = entry_point_group is None

    @overload
    def register(self, name: str, obj: None = None) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; used as a decorator when ``obj`` is omitted."""

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"A {self.kind} named '{name}' is already registered.")
            self._items[name] = item
            if self.on_add is not None:
                self.on_add(name, item)
            return item

        return add if obj is None else add(obj)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue
            try:
                self._items[ep.name] = ep.load()
                if self.on_add is not None:
                    self.on_add(ep.name, self._items[ep.name])
            except Exception as exc:  # a broken plug-in must not break memsim
                raise ImportError(
                    f"The {self.kind} plug-in '{ep.name}' ({ep.value}) from entry point group "
                    f"'{self.entry_point_group}' failed to load: {exc}"
                ) from exc

    def get(self, name: str) -> T:
        """Look up ``name``; unknown names raise :class:`UnknownNameError` listing known ones."""
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            known = self.names()
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'.{hint} Known {self.kind}s: {', '.join(known) or 'none'}."
            ) from None

    def names(self) -> list[str]:
        """Sorted names of every registered entry (entry points included)."""
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
