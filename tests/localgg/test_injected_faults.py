"""Each IPC handler of localgg, broken on purpose (tests/support/inject_raise.py), fails the suite that exercises
it: through the core harness's judgement of its logged errors (tests/conftest.py) when the suite itself would not
notice. A handler added to localgg without a suite here fails the first test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localgg import ipc
from localgg.authorization import Authorizer
from localgg.config import ConfigStore

REPO = Path(__file__).resolve().parents[2]
# The suite that exercises each handler through a real core and the real SDK client.
SUITES = {
    "PublishToTopic": "tests/localgg/test_ipc_sdk.py",
    "SubscribeToTopic": "tests/localgg/test_ipc_sdk.py",
    "PublishToIoTCore": "tests/localgg/test_iot_core.py",
    "SubscribeToIoTCore": "tests/localgg/test_iot_core.py",
    "GetConfiguration": "tests/localgg/test_ipc_sdk.py",
    "UpdateConfiguration": "tests/localgg/test_ipc_sdk.py",
    "SubscribeToConfigurationUpdate": "tests/localgg/test_ipc_sdk.py",
    "UpdateState": "tests/localgg/test_ipc_sdk.py",
    "SubscribeToComponentUpdates": "tests/localgg/test_updates.py",
    "DeferComponentUpdate": "tests/localgg/test_updates.py",
    "SubscribeToValidateConfigurationUpdates": "tests/localgg/test_updates.py",
    "SendConfigurationValidityReport": "tests/localgg/test_updates.py",
}

pytestmark = pytest.mark.slow  # a pytest run of a suite for each handler


def handlers() -> list[str]:
    services = ipc.IpcServices(ConfigStore(), Authorizer())
    return sorted(name.removeprefix(ipc.NS) for name in services._handlers)


def test_every_handler_has_its_suite() -> None:
    assert sorted(SUITES) == handlers()


@pytest.mark.parametrize("handler", handlers())
def test_a_raise_in_the_handler_fails_its_suite(handler: str) -> None:
    env = {**os.environ, "EDGEML_INJECT_RAISE": handler}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "tests.support.inject_raise",
         "-o", "addopts=", SUITES[handler]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"injected into {handler}" in done.stdout, done.stdout[-3000:]
