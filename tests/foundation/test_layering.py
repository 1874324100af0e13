"""Arrows run one way: scripts -> localcloud -> localgg. The core never imports the cloud, the tooling loads only
the small module that finds a running local cloud, and neither the tooling nor the core loads moto."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("scripts", "localcloud", "localgg", "recipeformat", "benchmarks")
COMPONENTS = (REPO / "components" / "publisher" / "publisher", REPO / "components" / "subscriber" / "subscriber")


def imported(folder: Path) -> dict[str, set[str]]:
    """Every absolute module name each file under `folder` imports, at any depth (function-level included)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names = found.setdefault(str(path.relative_to(REPO)), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offending(folder: Path, allowed: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{source}: {name}"
        for source, names in imported(folder).items()
        for name in names
        if name.split(".")[0] in forbidden and not any(name == a or name.startswith(a + ".") for a in allowed)
    )


def test_the_recipe_format_imports_nothing_of_the_repository() -> None:
    """recipeformat is the one definition of the recipe format that the tooling, the cloud and the core share."""
    assert offending(REPO / "recipeformat", (), ("scripts", "localcloud", "localgg", "benchmarks")) == []


def test_the_core_imports_nothing_of_the_cloud_or_the_tooling() -> None:
    assert offending(REPO / "localgg", (), ("localcloud", "scripts", "benchmarks")) == []


def test_the_cloud_imports_nothing_of_the_tooling() -> None:
    assert offending(REPO / "localcloud", (), ("scripts", "benchmarks")) == []


def test_the_tooling_imports_only_the_info_module_of_the_cloud() -> None:
    assert offending(REPO / "scripts", ("localcloud.info",), ("localcloud", "localgg", "benchmarks")) == []


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda path: path.name)
def test_components_import_nothing_from_the_rest_of_the_repository(component: Path) -> None:
    """They ship to devices on their own (architecture.md)."""
    assert offending(component, (), PACKAGES) == []


def test_the_checks_see_a_violation() -> None:
    """The checks above cannot pass vacuously: this file's own imports are visible to them."""
    assert (
        "tests.conftest.REPO" in imported(REPO / "tests" / "foundation")[str(Path("tests/foundation/test_layering.py"))]
    )


@pytest.mark.parametrize(
    "code",
    [
        "import scripts.cli",
        "import sys; sys.argv = ['localgg', 'run', '--help']\n"
        "import runpy\ntry:\n    runpy.run_module('localgg', run_name='__main__')\nexcept SystemExit:\n    pass",
        # An emulated device has only the device runtime's packages (localcloud/device_image): no moto.
        "import sys; sys.argv = ['localcloud', 'device', '--help']\n"
        "import runpy\ntry:\n    runpy.run_module('localcloud', run_name='__main__')\nexcept SystemExit:\n    pass",
    ],
    ids=["scripts.cli", "localgg run --help", "localcloud device --help"],
)
def test_moto_is_not_loaded_by_the_tooling_the_core_or_a_device(code: str) -> None:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m == 'moto' or m.startswith('moto.')))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_stack_does_load_moto() -> None:
    """The probe above is able to see moto where it is loaded."""
    probe = "import localcloud.stack, sys\nprint('moto' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "True", done.stderr
