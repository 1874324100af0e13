"""`make plan` on nothing applied starts the local cloud; `make destroy` stops it."""

from __future__ import annotations

import pytest

from scripts.local import sandbox
from tests.support.make import Make

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_plan_starts_the_local_cloud_and_destroy_stops_it_with_nothing_applied(make: Make) -> None:
    sandbox.stop(lambda message: None, make.root)
    done = make("plan")
    assert done.returncode == 0, done.stderr
    assert "changes: True" in done.stdout
    assert "terraform plan: Plan: " in done.stdout
    assert sandbox.find(make.root) is not None
    status = make("status")
    assert status.returncode != 0  # make reports a failed recipe as 2; the command itself exited 1
    assert (
        "lacks the Terraform output(s)" in status.stderr
        and "run `make apply` (or `make deploy`) first" in status.stderr
    )
    done = make("destroy")
    assert done.returncode == 0, done.stderr
    assert "nothing applied in it" in done.stdout
    assert sandbox.find(make.root) is None and not make.root.exists()
