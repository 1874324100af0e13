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
# (errors, progress, product, platforms, aws, tfoutputs) are open to all, and import no stage; the CLI (cli,
# arguments, render), the targets and the conductors (flows, pipeline) import any.
STAGES = {
    "building": (),
    "publishing": ("building",),
    "fleet": ("publishing",),
    "local": ("building", "publishing"),
    "cloud": (),
    "monitoring": (),
}
CONDUCTORS = ("cli", "arguments", "render", "targets", "flows", "pipeline", "__main__")
TOOLING = sorted((REPO / "scripts").rglob("*.py"))
MAX_LINES = 350


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


@pytest.mark.parametrize("module", TOOLING, ids=lambda path: str(path.relative_to(REPO / "scripts")))
def test_no_module_of_the_tooling_is_over_the_line_limit(module: Path) -> None:
    """One job a module: past MAX_LINES one has become two."""
    assert len(module.read_text().splitlines()) <= MAX_LINES


def environment_writes(source: str) -> list[int]:
    """The lines of `source` that change this process's environment: `os.environ[...] = ...`, `del os.environ[...]`,
    os.environ's mutating methods, os.putenv and os.unsetenv."""
    mutators = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Subscript) and is_environ(t.value) for t in targets):
            found.append(getattr(node, "lineno", 0))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            called = node.func
            if (called.attr in mutators and is_environ(called.value)) or called.attr in ("putenv", "unsetenv"):
                found.append(node.lineno)
    return sorted(found)


def test_the_tooling_changes_no_environment_outside_its_entry_point() -> None:
    """How a command reaches its target is handed over explicitly (a workspace's environment for Terraform, a
    session's endpoints and keys for boto3): a write to os.environ would point everything else in the process there
    too. Only the entry point may set up the process it starts."""
    found = {
        str(path.relative_to(REPO)): lines
        for path in TOOLING
        if path.name != "__main__.py" and (lines := environment_writes(path.read_text()))
    }
    assert found == {}
    # Not vacuous: each way of writing is seen.
    written = "import os\nos.environ['A'] = '1'\nos.environ.update(B='2')\ndel os.environ['A']\nos.putenv('C', '3')\n"
    assert environment_writes(written) == [2, 3, 4, 5]


def target_questions(source: str) -> list[int]:
    """The lines of `source` that ask which target they have: a comparison with "local" or "aws", or an isinstance
    check against a target's class."""
    classes = {"Local", "Account", "LocalStack", "AccountStack"}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in ("local", "aws") for o in operands):
                found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            named = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "") for n in ast.walk(node.args[1])}
            if named & classes:
                found.append(node.lineno)
    return sorted(found)


def test_only_the_targets_module_tells_the_two_targets_apart() -> None:
    """scripts/targets.py holds what differs between the local cloud and a real account, behind one interface."""
    found = {
        str(path.relative_to(REPO)): lines
        for path in TOOLING
        if path.name != "targets.py" and (lines := target_questions(path.read_text()))
    }
    assert found == {}
    asked = 'if target.name == "aws":\n    pass\nif isinstance(stack, targets.LocalStack):\n    pass\n'
    assert target_questions(asked) == [1, 3]


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
