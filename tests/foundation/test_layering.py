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


# The tooling's stages (scripts/<stage>/) and the stages each may import; the shared modules at the top
# (errors, progress, product, platforms, aws, tfoutputs, render) are open to all, and import no stage; the CLI and
# the conductors (cli, flows, pipeline) import any.
STAGES = {
    "building": (),
    "publishing": ("building",),
    "fleet": ("publishing",),
    "local": ("building", "publishing"),
    "cloud": ("local",),
}
CONDUCTORS = ("cli", "flows", "pipeline", "__main__")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_imports_only_the_stages_below_it(stage: str) -> None:
    """Building and publishing never import the fleet or the local cloud; nothing below imports a conductor."""
    allowed = tuple(f"scripts.{name}" for name in (stage, *STAGES[stage]))
    others = [f"scripts.{name}" for name in STAGES if f"scripts.{name}" not in allowed]
    conductors = [f"scripts.{name}" for name in CONDUCTORS]
    found = [
        f"{source}: {name}"
        for source, names in imported(REPO / "scripts" / stage).items()
        for name in names
        if any(name == bad or name.startswith(bad + ".") for bad in [*others, *conductors])
    ]
    assert found == []
    # Not vacuous: what the check reads is there (publishing does import building).
    assert any(
        n.startswith("scripts.building") for names in imported(REPO / "scripts" / "publishing").values() for n in names
    )


def test_the_shared_modules_import_no_stage() -> None:
    shared = [path for path in (REPO / "scripts").glob("*.py") if path.stem not in CONDUCTORS]
    assert {path.stem for path in shared} >= {"errors", "progress", "product", "platforms", "aws", "tfoutputs"}
    stages = [f"scripts.{name}" for name in STAGES]
    found = [
        f"{path.name}: {name}"
        for path in shared
        for name in imported(REPO / "scripts").get(str(path.relative_to(REPO)), set())
        if any(name == stage or name.startswith(stage + ".") for stage in stages)
    ]
    assert found == []


def test_every_module_of_the_tooling_is_in_a_stage_or_shared() -> None:
    """A new folder under scripts/ is a stage, with its place in STAGES; each says in its __init__ what lives there."""
    folders = {p.name for p in (REPO / "scripts").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(STAGES)
    for name in STAGES:
        assert len((REPO / "scripts" / name / "__init__.py").read_text().strip()) > 80, name


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
