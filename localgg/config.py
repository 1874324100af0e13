"""Component configuration: the `services.<name>.configuration` tree, its updates and their watchers."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

Watcher = Callable[[str, list[str]], None]  # (component, changed key path)
PROTECTED_KEYS = ("accessControl",)


class KeyNotFound(LookupError):
    pass


class UpdateRefused(ValueError):
    pass


class StaleUpdate(ValueError):
    pass


def deep_merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _remove_path(tree: dict[str, Any], path: str) -> None:
    """RESET of a JSON pointer (`/a/b`): the key goes; the recipe default, if any, comes back by the caller."""
    keys = [k for k in path.split("/") if k]
    node: Any = tree
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and keys:
        node.pop(keys[-1], None)
    elif not keys:
        tree.clear()


def merged(
    default: dict[str, Any],
    merge: dict[str, Any] | None = None,
    reset: list[str] | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A deployment's view, as the nucleus merges it: the recipe default under the values already on the device (a
    new default does not overwrite them; new keys are added), then RESET paths, then MERGE."""
    tree = copy.deepcopy(default)
    if previous is not None:
        deep_merge(tree, previous)
    if reset:
        for path in reset:
            _remove_path(tree, path)
        # A reset key falls back to the recipe default.
        fresh = copy.deepcopy(default)
        deep_merge(fresh, tree)
        tree = fresh
    deep_merge(tree, merge or {})
    return tree


def changed_paths(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Each key path whose value differs: every leaf (a map's own path when it is empty) added, removed or changed,
    as the nucleus's configuration tree notifies a watcher once per changed node."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[list[str]] = []
        for key in sorted(set(old) | set(new), key=str):
            found += changed_paths(old.get(key, _ABSENT), new.get(key, _ABSENT), (*prefix, str(key)))
        return found
    if old == new:
        return []
    leaves = changed_paths({}, new, prefix) if isinstance(new, dict) else []
    leaves += changed_paths(old, {}, prefix) if isinstance(old, dict) else []
    return leaves or [list(prefix)]


_ABSENT = object()


class ConfigStore:
    def __init__(self) -> None:
        self._trees: dict[str, dict[str, Any]] = {}
        self._stamps: dict[str, float] = {}
        self._watchers: list[Watcher] = []

    def set_component(self, component: str, tree: dict[str, Any]) -> None:
        """A deployment's new configuration (see `merged`); watchers hear of each changed key path of a component
        that already had one."""
        before = self._trees.get(component)
        self._trees[component] = copy.deepcopy(tree)
        self._stamps[component] = time.time()
        if before is not None:
            self._notify(component, changed_paths(before, tree))

    def _notify(self, component: str, paths: list[list[str]]) -> None:
        for path in paths:
            for watcher in list(self._watchers):
                watcher(component, path)

    def remove_component(self, component: str) -> None:
        self._trees.pop(component, None)
        self._stamps.pop(component, None)

    def has(self, component: str) -> bool:
        return component in self._trees

    def tree(self, component: str) -> dict[str, Any]:
        return self._trees.get(component, {})

    def get(self, component: str, key_path: list[str]) -> Any:
        """GetConfiguration's answer: the whole map, an interior map, or `{leaf: value}`."""
        if component not in self._trees:
            raise KeyNotFound("Key not found")
        node: Any = self._trees[component]
        for key in key_path:
            if not isinstance(node, dict) or key not in node:
                raise KeyNotFound("Key not found")
            node = node[key]
        if isinstance(node, dict):
            return copy.deepcopy(node)
        return {key_path[-1]: copy.deepcopy(node)}

    def update(self, component: str, key_path: list[str], value: dict[str, Any], timestamp: float | None) -> None:
        """UpdateConfiguration by a component of its own configuration."""
        if (key_path and key_path[0] in PROTECTED_KEYS) or (not key_path and any(k in value for k in PROTECTED_KEYS)):
            raise UpdateRefused(f"Config update is not allowed for following fields {list(PROTECTED_KEYS)}")
        if timestamp is not None and timestamp < self._stamps.get(component, 0):
            raise StaleUpdate("Proposed timestamp is older than the config's latest modified timestamp")
        before = copy.deepcopy(self._trees.get(component, {}))
        node = self._trees.setdefault(component, {})
        for key in key_path:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        deep_merge(node, value)
        self._stamps[component] = timestamp if timestamp is not None else time.time()
        self._notify(component, changed_paths(before, self._trees[component]))

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None
