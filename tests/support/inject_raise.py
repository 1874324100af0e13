"""A pytest plugin that breaks one IPC handler of localgg: `EDGEML_INJECT_RAISE=PublishToTopic pytest -p
tests.support.inject_raise ...` makes that operation's handler raise before it does anything, in every core the run
starts in its own process. tests/localgg/test_injected_faults.py runs each handler's suite so, to prove the suite
fails when its handler does."""

from __future__ import annotations

import os
from typing import Any

import pytest

from localgg import ipc

BROKEN = os.environ.get("EDGEML_INJECT_RAISE", "")


class Injected(RuntimeError):
    """The fault the plugin put into a handler."""


def _raise(peer: Any, stream_id: int, request: dict[str, Any]) -> None:
    raise Injected(f"injected into {BROKEN}")


@pytest.hookimpl
def pytest_configure(config: pytest.Config) -> None:
    if not BROKEN:
        return
    made = ipc.IpcServices.__init__

    def breaking(self: ipc.IpcServices, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        if ipc.NS + BROKEN not in self._handlers:
            raise pytest.UsageError(f"EDGEML_INJECT_RAISE={BROKEN}: localgg has no handler of that name")
        self._handlers[ipc.NS + BROKEN] = _raise

    ipc.IpcServices.__init__ = breaking  # type: ignore[method-assign]
