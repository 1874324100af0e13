"""How the nucleus reads recipes and artifacts of a local deployment, matched by localgg: recipes found by
content, the whole artifact folder copied, case-insensitive keys, platform selection, Selections with a global
lifecycle. Each test cites where the nucleus (or its recipe model in aws-greengrass-component-common) does it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from localgg.deployment import DeploymentError, parse_update_config
from localgg.lifecycle import State
from recipeformat.platform import architecture_of, best_manifest, fits, manifest_lifecycle
from tests.localgg.harness import CoreThread, run_core
from tests.localgg.test_lifecycle import wait_state
from tests.support.eventually import eventually


def put(folder: Path, file: str, recipe: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(recipe) if file.endswith(".json") else yaml.safe_dump(recipe, sort_keys=False)
    (folder / file).write_text(text)


def log_of(gg: CoreThread, name: str) -> str:
    path = gg.core.root / "logs" / f"{name}.log"
    return path.read_text() if path.exists() else ""


def wait_log(gg: CoreThread, name: str, text: str, timeout: float = 15.0) -> str:
    eventually(lambda: text in log_of(gg, name), timeout, what=f"{text!r} in the log of {name}")
    return log_of(gg, name)


def test_unlisted_artifacts_and_sub_folders_are_copied(gg: CoreThread, tmp_path: Path) -> None:
    """DeploymentService.copyRecipesAndArtifacts copies the whole --artifactDir tree into the component store
    (Utils.copyFolderRecursively): a recipe with no Artifacts still finds its scripts, sub-folders included."""
    source = tmp_path / "artifacts" / "com.example.Hello" / "1.0.0"
    (source / "src").mkdir(parents=True)
    (source / "hello.sh").write_text("echo top-level script\n")
    (source / "src" / "main.sh").write_text("echo from a sub-folder\n")
    put(
        gg.recipes,
        "anything.yaml",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Hello",
            "ComponentVersion": "1.0.0",
            "Manifests": [
                {
                    "Platform": {"os": "linux"},
                    "Lifecycle": {"Run": "sh {artifacts:path}/hello.sh && sh {artifacts:path}/src/main.sh"},
                }
            ],
        },
    )
    gg.deploy("com.example.Hello", artifact_dir=tmp_path / "artifacts")
    log = wait_log(gg, "com.example.Hello", "from a sub-folder")
    assert "top-level script" in log


def test_recipe_keys_are_case_insensitive(gg: CoreThread, tmp_path: Path) -> None:
    """The recipe model is read case-insensitively (component-common's RecipeLoader maps keys ignoring case;
    the nucleus looks lifecycle keys up in its case-insensitive configuration store): `uri`, `run`, `script`,
    `setenv`, `timeout`, `lifecycle` and `manifests` in any case work as their documented spelling."""
    source = tmp_path / "artifacts" / "com.example.Lower" / "2.0.0"
    source.mkdir(parents=True)
    (source / "tool.sh").write_text("echo tool ran with $GREETING\n")
    put(
        gg.recipes / "nested",
        "r.yaml",
        {
            "recipeformatversion": "2020-01-25",
            "componentname": "com.example.Lower",
            "componentversion": "2.0.0",
            "manifests": [
                {
                    "platform": {"OS": "linux"},
                    "artifacts": [{"uri": "s3://bucket/tool.sh", "permission": {"execute": "OWNER"}}],
                    "lifecycle": {
                        "setenv": {"GREETING": "hello"},
                        "install": {"script": "echo installing", "timeout": 30},
                        "run": {"script": "{artifacts:path}/tool.sh; exec sleep 60"},
                    },
                }
            ],
        },
    )
    gg.deploy("com.example.Lower", version="2.0.0", artifact_dir=tmp_path / "artifacts")
    log = wait_log(gg, "com.example.Lower", "tool ran with hello")
    assert "installing" in log
    recipe = gg.core.recipes["com.example.Lower"]
    assert recipe.steps["Install"].timeout == 30
    assert os.access(gg.core.root / "packages/artifacts/com.example.Lower/2.0.0/tool.sh", os.X_OK)


def test_an_unknown_key_is_logged_not_dropped_silently(gg: CoreThread, caplog: pytest.LogCaptureFixture) -> None:
    put(
        gg.recipes,
        "typo.json",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Typo",
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {}, "Artefacts": []}],
        },
    )
    gg.deploy("com.example.Typo")
    assert any("unknown key 'Artefacts'" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("template", "label", "expected"),
    [
        ({"os": "all"}, {"os": "linux"}, True),
        ({"os": "any"}, {"os": "linux"}, True),
        ({"os": "*"}, {"os": "linux"}, True),
        ({"os": "/lin.*/"}, {"os": "linux"}, True),
        ({"os": "/lin/"}, {"os": "linux"}, False),  # the whole label must match
        ({"os": "windows"}, {"os": "linux"}, False),
        ({"os": "linux", "architecture": "aarch64"}, {"os": "linux", "architecture": "amd64"}, False),
        ({"os": "linux", "architecture": ["arm", "aarch64"]}, {"os": "linux", "architecture": "aarch64"}, True),
        ({"os": "linux", "architecture": "/amd64|x86/"}, {"os": "linux", "architecture": "x86"}, True),
        ({"runtime": "/.+/"}, {"os": "linux"}, False),  # a field the device does not have
        ({}, {"os": "linux"}, True),
    ],
)
def test_platform_templates(template: dict[str, Any], label: dict[str, str], expected: bool) -> None:
    """component-common's PlatformHelper: alternatives in a list, `//` and `*` for any value, `/regex/` matching
    the whole label, `all`/`any` for os and architecture, else equality."""
    assert fits(template, label) is expected


def test_architecture_names_are_the_nucleus_s() -> None:
    """PlatformResolver.getArchInfo: x86_64 is amd64, i386 is x86, aarch64 stays, arm* is arm."""
    assert [architecture_of(m) for m in ("x86_64", "i686", "aarch64", "armv7l")] == ["amd64", "x86", "aarch64", "arm"]


def test_selections_pick_from_the_global_lifecycle() -> None:
    """Recipe reference, Manifests.Selections: a manifest without its own Lifecycle takes the sections of the
    recipe's global Lifecycle named by its selection keys, `all` by default."""
    document = {
        "Lifecycle": {"linux": {"Run": "echo linux"}, "all": {"Run": "echo all"}},
        "Manifests": [
            {"Platform": {"os": "windows"}, "Selections": ["windows"]},
            {"Platform": {"os": "linux"}, "Selections": ["linux"]},
        ],
    }
    manifest = best_manifest(document["Manifests"], {"os": "linux", "architecture": "amd64"})  # type: ignore[arg-type]
    assert manifest is not None
    assert manifest_lifecycle(document, manifest) == {"Run": "echo linux"}
    assert manifest_lifecycle(document, {"Platform": {"os": "linux"}}) == {"Run": "echo all"}


def test_a_recipe_with_no_manifest_for_the_platform_names_the_platform(gg: CoreThread) -> None:
    put(
        gg.recipes,
        "arm.yaml",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.ArmOnly",
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux", "architecture": "aarch64"}, "Lifecycle": {"Run": "true"}}],
        },
    )
    with pytest.raises(
        DeploymentError,
        match=r"no manifest for this platform \(architecture=amd64, os=linux, runtime=aws_nucleus_classic\)",
    ):
        gg.deploy("com.example.ArmOnly")


def test_the_developer_guides_local_workflow(tmp_path: Path) -> None:
    """Developer guide, "Create your first component": a recipe with no Artifacts, the script in
    `<artifactDir>/<name>/<version>/`, then `greengrass-cli deployment create --recipeDir --artifactDir --merge`.
    Here: `python -m localgg run` with the same flags, stopped with SIGTERM, exit 0."""
    recipes, artifacts, root = tmp_path / "recipes", tmp_path / "artifacts", Path(f"/tmp/gg-dev-{os.getpid()}")
    put(
        recipes,
        "com.example.HelloWorld-1.0.0.json",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.HelloWorld",
            "ComponentVersion": "1.0.0",
            "ComponentConfiguration": {"DefaultConfiguration": {"Message": "world"}},
            "Manifests": [
                {
                    "Platform": {"os": "linux"},
                    "Lifecycle": {"run": 'python3 -u {artifacts:path}/hello_world.py "{configuration:/Message}"'},
                }
            ],
        },
    )
    script = artifacts / "com.example.HelloWorld" / "1.0.0" / "hello_world.py"
    script.parent.mkdir(parents=True)
    # The component's own life (the guide's Hello World keeps running), not a wait of the test.
    script.write_text("import sys, time\nprint(f'Hello, {sys.argv[1]}!')\ntime.sleep(60)\n")
    core = run_core(root, recipes, "--artifact-dir", str(artifacts), "--merge", "com.example.HelloWorld=1.0.0")
    try:
        log = root / "logs" / "com.example.HelloWorld.log"

        def greeted() -> bool:
            assert core.poll() is None, core.stderr.read() if core.stderr else ""  # a dead core fails at once
            return "Hello, world!" in (log.read_text() if log.exists() else "")

        eventually(greeted, 30, 0.1, what="Hello, world! in its log")
    finally:
        core.send_signal(signal.SIGTERM)
        _, errors = core.communicate(timeout=60)
    assert core.returncode == 0, errors
    assert "Task was destroyed" not in errors


def lifecycle_recipe(gg: CoreThread, name: str, lifecycle: dict[str, Any], **top: Any) -> None:
    put(
        gg.recipes,
        f"{name}.yaml",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": "1.0.0",
            **top,
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": lifecycle}],
        },
    )


@pytest.mark.parametrize("code", [0, 100, 101])
def test_bootstrap_runs_before_install(gg: CoreThread, code: int) -> None:
    """Recipe reference, Lifecycle.Bootstrap: it runs before Install; exit 100 asks the nucleus to restart and
    101 the host to reboot, after which the lifecycle goes on (localgg emulates the restart, reports the reboot)."""
    lifecycle_recipe(
        gg,
        "com.example.Boot",
        {
            "Bootstrap": {"Script": f"echo bootstrap; exit {code}", "RequiresPrivilege": "true"},
            "Install": "echo install",
            "Run": "echo run; exec sleep 60",
        },
    )
    gg.deploy("com.example.Boot")
    log = wait_log(gg, "com.example.Boot", "stdout. run")
    assert log.index("bootstrap") < log.index("stdout. install") < log.index("stdout. run")
    if code == 101:
        assert "host reboot (101)" in log


@pytest.mark.core_error(r"deployment FAILED: com\.example\.BadBoot is BROKEN")
def test_a_failing_bootstrap_is_an_error(gg: CoreThread) -> None:
    lifecycle_recipe(gg, "com.example.BadBoot", {"Bootstrap": "exit 3", "Run": "exec sleep 60"})
    gg.deploy("com.example.BadBoot")
    assert wait_state(gg, "com.example.BadBoot", State.BROKEN) is State.BROKEN
    assert "stdout. run" not in log_of(gg, "com.example.BadBoot")


def test_skipif_skips_a_step(gg: CoreThread, tmp_path: Path) -> None:
    """Recipe reference, Skipif: `onpath <executable>` or `exists <file>` skips the step when it holds."""
    marker = tmp_path / "present"
    marker.write_text("")
    lifecycle_recipe(
        gg,
        "com.example.Skip",
        {
            "Install": {"Script": "echo install-skipped", "Skipif": "onpath sh"},
            "Startup": {"Script": "echo startup-skipped", "Skipif": f"exists {marker}"},
            "Run": {"Script": "echo run-ran; exec sleep 60", "Skipif": f"exists {tmp_path / 'absent'}"},
        },
    )
    gg.deploy("com.example.Skip")
    log = wait_log(gg, "com.example.Skip", "run-ran")
    assert "install-skipped" not in log.replace("Install skipped", "") and "startup-skipped" not in log
    assert "Install skipped: onpath sh" in log


def test_setenv_at_every_level(gg: CoreThread) -> None:
    """Recipe reference, Lifecycle.Setenv and a step's Setenv: the lifecycle's applies to every step, a step's
    own overrides it for that step."""
    lifecycle_recipe(
        gg,
        "com.example.Env",
        {
            "Setenv": {"LEVEL": "lifecycle", "SHARED": "from-lifecycle"},
            "Install": {"Script": "echo install $LEVEL $SHARED", "Setenv": {"LEVEL": "step"}},
            "Run": "echo run $LEVEL $SHARED; exec sleep 60",
        },
    )
    gg.deploy("com.example.Env")
    log = wait_log(gg, "com.example.Env", "run lifecycle from-lifecycle")
    assert "install step from-lifecycle" in log


def test_stop_gives_a_graceful_handler_its_time_and_leaves_nothing_behind(gg: CoreThread) -> None:
    """UnixExec.close: SIGTERM to the process group, SIGKILL after the grace period (5 s); here a handler that
    needs 1 s finishes, and a child started in the background (`sleep 100 &`) does not outlive the component."""
    handler = (
        "trap 'sleep 1; echo graceful exit; exit 0' TERM; sleep 100 & echo $! > bg.pid; while true; do sleep 0.1; done"
    )
    lifecycle_recipe(gg, "com.example.Graceful", {"Run": handler})
    gg.deploy("com.example.Graceful")
    pid_file = gg.core.root / "work" / "com.example.Graceful" / "bg.pid"
    eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, what=str(pid_file))
    background = int(pid_file.read_text())
    gg.call(gg.core.components["com.example.Graceful"].stop(), timeout=30)
    assert "graceful exit" in log_of(gg, "com.example.Graceful")
    assert not _alive(background)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_selected_global_lifecycle_runs(gg: CoreThread) -> None:
    """Recipe reference, Manifests.Selections, end to end: the manifest picks `linux` from the global Lifecycle,
    whose keys are read in any case like the rest of the recipe."""
    put(
        gg.recipes,
        "selections.yaml",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Selected",
            "ComponentVersion": "1.0.0",
            "Lifecycle": {"windows": {"run": "echo wrong"}, "linux": {"run": "echo selected; exec sleep 60"}},
            "Manifests": [{"Platform": {"os": "linux"}, "Selections": ["linux"]}],
        },
    )
    gg.deploy("com.example.Selected")
    assert "wrong" not in wait_log(gg, "com.example.Selected", "stdout. selected")


def test_a_broken_component_is_a_failed_deployment(tmp_path: Path) -> None:
    """The nucleus reports a deployment whose component ends BROKEN as FAILED: `localgg run` logs it, says so in
    ROOT/status.json, keeps BROKEN through the stop, and exits 1 once stopped."""
    recipes, root = tmp_path / "recipes", Path(f"/tmp/gg-broken-{os.getpid()}")
    put(
        recipes,
        "broken.yaml",
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Broken",
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "exit 3"}}],
        },
    )
    core = run_core(root, recipes, "--merge", "com.example.Broken=1.0.0")
    try:
        status = root / "status.json"

        def failed() -> bool:
            assert core.poll() is None
            return '"FAILED"' in (status.read_text() if status.exists() else "")

        eventually(failed, 30, 0.1, what="the deployment FAILED in status.json")
        document = json.loads(status.read_text())
        assert document["deployment"] == {"status": "FAILED", "broken": ["com.example.Broken"]}
    finally:
        core.send_signal(signal.SIGTERM)
        _, errors = core.communicate(timeout=60)
    assert core.returncode == 1
    assert "deployment FAILED: com.example.Broken is BROKEN" in errors
    assert "Task was destroyed" not in errors  # a clean shutdown, no pending tasks left behind
    assert json.loads((root / "status.json").read_text())["components"]["com.example.Broken"]["state"] == "BROKEN"


def test_update_config_from_a_file_and_the_effective_configuration(gg: CoreThread, tmp_path: Path) -> None:
    """greengrass-cli's `--update-config` takes a JSON string or a file path; after a deployment the nucleus
    writes its whole configuration to ROOT/config/effectiveConfig.yaml."""
    change = tmp_path / "update.json"
    change.write_text(json.dumps({"com.example.Conf": {"MERGE": {"level": 2}}}))
    assert parse_update_config(str(change)) == {"com.example.Conf": {"MERGE": {"level": 2}}}
    lifecycle_recipe(gg, "com.example.Conf", {}, ComponentConfiguration={"DefaultConfiguration": {"level": 1}})
    gg.deploy("com.example.Conf", update_config=parse_update_config(str(change)))
    effective = yaml.safe_load((gg.core.root / "config" / "effectiveConfig.yaml").read_text())
    assert effective["services"]["com.example.Conf"]["configuration"] == {"level": 2}
    assert effective["services"]["com.example.Conf"]["version"] == "1.0.0"
