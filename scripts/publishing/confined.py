"""Run a Python module on untrusted input the way the subscriber's image runs it: not as root, with no network and no
credentials.

A model file comes from anywhere and libxgboost parses it (a bad tree index crashes it), so the tooling's check of
one must not run with the caller's privileges. Run by root, the command gets a network namespace of its own (only a
loopback that is down) and a mount namespace in which the interpreter, its packages and the module's source are bound
under a stage folder that only the unprivileged user may enter. It then runs as that user with no capabilities and
no way to gain any, since the checkout or the interpreter may sit under a folder (a 0700 temporary folder, /root)
that user could not otherwise reach. Nothing is copied but the input files and nothing outlives the command: the
mounts belong to its namespace. Run by anyone else, the command runs as that user, who is already not root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.errors import ToolError

UNPRIVILEGED = 65534  # nobody/nogroup: what Debian and Ubuntu give no file and no group
KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "XGBOOST_LIBRARY")
STAGE_PARENT = Path("/tmp")  # every user may enter it (FHS); TMPDIR may be a private folder


class ConfinementError(ToolError):
    """The command could not be confined (util-linux's unshare or setpriv missing, as root)."""


@dataclass(frozen=True)
class Module:
    """`python -m <name> <args>`, importable from `source`; `inputs` are copied in, each named by its key."""

    name: str
    source: Path
    inputs: Mapping[str, Path]


@dataclass(frozen=True)
class Finished:
    """The command's result, and where it saw each input (a copy, when confined)."""

    process: subprocess.CompletedProcess[str]
    seen: Mapping[Path, Path]  # where the command read an input -> the caller's file

    def told(self, text: str) -> str:
        """The command's words with its own names for the inputs put back to the caller's."""
        for where, original in self.seen.items():
            text = text.replace(str(where), str(original))
        return text


Arguments = Callable[[Mapping[str, Path]], Sequence[str]]  # where each input is -> the module's arguments


def run(module: Module, args: Arguments, stdin: str, timeout: float, environ: Mapping[str, str]) -> Finished:
    """Raises subprocess.TimeoutExpired like subprocess.run, ConfinementError if it cannot be confined."""
    if os.geteuid() != 0:
        inputs = {key: path.resolve() for key, path in module.inputs.items()}
        command = [sys.executable, "-m", module.name, *args(inputs)]
        process = _finished(command, stdin, timeout, environment(environ, [module.source]))
        return Finished(process, {inputs[key]: path for key, path in module.inputs.items()})
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare is None or setpriv is None:
        raise ConfinementError(
            "checking a model as root needs util-linux's unshare and setpriv, to run it as an unprivileged user "
            "with no network: install util-linux"
        )
    stage = Path(tempfile.mkdtemp(prefix="edgeml-confined-", dir=STAGE_PARENT))
    try:
        return _staged(stage, module, args, stdin, timeout, environ, (unshare, setpriv))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def environment(environ: Mapping[str, str], path: Sequence[Path]) -> dict[str, str]:
    """What the command is given: what Python needs to run, and nothing else (no keys, no tokens, no HOME)."""
    kept = {name: environ[name] for name in KEPT_VARIABLES if name in environ}
    return {**kept, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}


def _staged(
    stage: Path,
    module: Module,
    args: Arguments,
    stdin: str,
    timeout: float,
    environ: Mapping[str, str],
    tools: tuple[str, str],
) -> Finished:
    unshare, setpriv = tools
    prefix = Path(sys.base_prefix).resolve()
    executable = Path(sys.executable).resolve()
    if not executable.is_relative_to(prefix):
        raise ConfinementError(f"the interpreter {executable} is not under its prefix {prefix}: cannot stage it")
    packages = sorted({Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")})
    binds = {"python": prefix, "source": module.source.resolve()}
    binds |= {f"packages{index}": folder for index, folder in enumerate(packages)}
    for name in binds:
        (stage / name).mkdir()
    inputs = {}
    for key, path in module.inputs.items():
        copy = stage / f"input-{key}{path.suffix}"
        shutil.copyfile(path, copy)
        os.chown(copy, UNPRIVILEGED, UNPRIVILEGED)
        copy.chmod(0o400)
        inputs[key] = copy
    os.chown(stage, UNPRIVILEGED, UNPRIVILEGED)
    stage.chmod(0o700)  # only the unprivileged user (and root) may enter: the inputs are not for other users
    # The mounts are made in the command's own mount namespace (unshare makes it private), so no one else sees them.
    mounts = " && ".join(f'mount --bind "${index + 1}" "{stage / name}"' for index, name in enumerate(binds))
    env = environment(environ, [stage / "source", *(stage / name for name in binds if name.startswith("packages"))])
    env["LD_LIBRARY_PATH"] = str(stage / "python" / "lib")  # an interpreter built --enable-shared finds libpython
    drop = [setpriv, f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups", "--no-new-privs"]
    drop += ["--inh-caps=-all", "--bounding-set=-all"]
    python = stage / "python" / executable.relative_to(prefix)
    command = [unshare, "--net", "--mount", "--", "sh", "-c", f'{mounts} && shift {len(binds)} && exec "$@"', "sh"]
    command += [*map(str, binds.values()), *drop, "--", str(python), "-m", module.name, *args(inputs)]
    process = _finished(command, stdin, timeout, env)
    return Finished(process, {inputs[key]: path for key, path in module.inputs.items()})


def _finished(
    command: Sequence[str], stdin: str, timeout: float, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, timeout=timeout, check=False, env=dict(env)
    )
