from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.localgg.harness import CoreThread


@pytest.fixture
def gg() -> Iterator[CoreThread]:
    core = CoreThread()
    yield core
    core.close()
