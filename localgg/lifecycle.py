"""One component's lifecycle, as the nucleus runs a generic external service.

NEW -> Install -> INSTALLED -> Startup|Run -> STARTING/RUNNING -> FINISHED (Run exited 0) or ERRORED.
An error runs Recover and restarts the component; the third error makes it BROKEN, and it stays down.
Scripts run with `sh -c` in the component's work folder as the component's user (localgg.runwith), in their own
process group, with the recipe's environment; their output goes line by line to `<root>/logs/<component>.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from localgg.leftovers import Ledger, live_members
from localgg.recipe import Recipe, Step
from localgg.runwith import ROOT, RunWith, decorate

log = logging.getLogger("localgg.lifecycle")
MAX_ERRORS = 3
RESTART_DELAY = 0.5
# From SIGTERM to SIGKILL when a component stops (the nucleus's UnixExec gives a process 5 s).
STOP_GRACE = 5.0
SUPERVISOR_GRACE = 10.0
REQUEST_CORE_RESTART, REQUEST_HOST_REBOOT = 100, 101  # Bootstrap exit codes (recipe reference)
NUCLEUS = RunWith.current()  # who this core runs as: a step for this user runs undecorated


class State(StrEnum):
    NEW = "NEW"
    INSTALLED = "INSTALLED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    FINISHED = "FINISHED"
    ERRORED = "ERRORED"
    BROKEN = "BROKEN"


# The nucleus's logging defaults (developer guide, "Configure logging"): a file rotates every hour or once it
# passes fileSizeKB, as <name>_<yyyy_MM_dd_HH>_<index>.log, and a log's files together keep to totalLogsSizeKB,
# the oldest deleted first.
FILE_SIZE_KB, TOTAL_LOGS_SIZE_KB = 1024, 10240


class ComponentLog:
    """`<component>.log`, rotated as the nucleus rotates it: a component that writes without end (a line per
    message at thousands a second) costs the device at most TOTAL_LOGS_SIZE_KB of disk."""

    def __init__(
        self,
        path: Path,
        component: str,
        file_size: int = FILE_SIZE_KB << 10,
        total_size: int = TOTAL_LOGS_SIZE_KB << 10,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.component, self.file_size, self.total_size = path, component, file_size, total_size
        self._file = path.open("a", buffering=1)
        self._size = self._file.tell()
        self._hour = time.strftime("%Y_%m_%d_%H", time.gmtime())
        self._rotated = re.compile(rf"^{re.escape(path.stem)}_(\d{{4}}_\d\d_\d\d_\d\d)_(\d+)\.log$")

    def write(self, stream: str, line: str) -> None:
        if self._file.closed:  # output that arrives after the component stopped
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        text = f"{stamp} [{'WARN' if stream == 'stderr' else 'INFO'}] {self.component}: {stream}. {line}\n"
        hour = time.strftime("%Y_%m_%d_%H", time.gmtime(now))
        if self._size and (self._size + len(text) > self.file_size or hour != self._hour):
            self._rotate()
        self._hour = hour
        self._file.write(text)
        self._size += len(text.encode())

    def _rotate(self) -> None:
        self._file.close()
        index = 0
        while (rotated := self.path.with_name(f"{self.path.stem}_{self._hour}_{index}.log")).exists():
            index += 1
        os.replace(self.path, rotated)
        self._file, self._size = self.path.open("a", buffering=1), 0
        older = sorted((p for p in self.path.parent.iterdir() if self._rotated.match(p.name)), key=self._rotation_order)
        total = sum(p.stat().st_size for p in older)
        while older and total > self.total_size:
            oldest = older.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink()

    def _rotation_order(self, path: Path) -> tuple[str, int]:
        named = self._rotated.match(path.name)
        assert named is not None  # only rotated files are sorted
        return named[1], int(named[2])

    def close(self) -> None:
        self._file.close()


class Component:
    def __init__(
        self,
        recipe: Recipe,
        steps: dict[str, Step],
        env: dict[str, str],
        work: Path,
        log_path: Path,
        on_state: Callable[[str, State], None] = lambda name, state: None,
        run_with: RunWith | None = None,
        ledger: Ledger | None = None,
        log_limits: tuple[int, int] = (FILE_SIZE_KB << 10, TOTAL_LOGS_SIZE_KB << 10),
    ) -> None:
        """`run_with`: the component's user (default: the nucleus's own); `ledger`: where the core writes down the
        process groups its scripts start (localgg.leftovers); `log_limits`: its log's file and total sizes."""
        self.run_with = run_with or NUCLEUS
        self.ledger = ledger
        self.recipe = recipe
        self.name = recipe.name
        self.steps = steps  # already interpolated
        self.env = env
        self.work = work
        self.log = ComponentLog(log_path, self.name, *log_limits)
        self.on_state = on_state
        self.state = State.NEW
        self.errors = 0
        self._process: asyncio.subprocess.Process | None = None
        self._groups: set[int] = set()  # every process group a script started: none may outlive the component
        self._pumps: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._reported_error = False
        self._changed = asyncio.Event()

    def _set(self, state: State) -> None:
        if state is not self.state:
            log.info("%s: %s -> %s", self.name, self.state.value, state.value)
            self.state = state
            self.log.write("lifecycle", f"state {state.value}")
            self.on_state(self.name, state)
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, *states: State, timeout: float | None = None) -> State:
        async with asyncio.timeout(timeout):
            while self.state not in states:
                await self._changed.wait()
        return self.state

    # Scripts -----------------------------------------------------------------------------------------------

    async def _spawn(self, step: str) -> asyncio.subprocess.Process:
        spec = self.steps[step]
        # Our own pipes, not asyncio's: a script may leave a daemon holding its output open, and its end must
        # still be seen when the script itself exits (as the nucleus sees it).
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            # As the component's user, or as root for a RequiresPrivilege step (localgg.runwith).
            command = decorate(["sh", "-c", spec.script], ROOT if spec.requires_privilege else self.run_with, NUCLEUS)
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.work,
                env={**self.env, **spec.env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                start_new_session=True,
            )
        finally:
            os.close(out_write)
            os.close(err_write)
        self._groups.add(process.pid)  # its own session: the group id is its pid
        if self.ledger is not None:
            self.ledger.add(process.pid)
        self._pumps = [task for task in self._pumps if not task.done()]
        for stream, fd in (("stdout", out_read), ("stderr", err_read)):
            self._pumps.append(asyncio.create_task(self._pump(stream, fd)))
        return process

    async def _pump(self, stream: str, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # over the limit: note it and keep draining
                    self.log.write(stream, "(a line longer than 1 MiB was dropped)")
                    continue
                if not line:
                    break
                self.log.write(stream, line.decode(errors="replace").rstrip("\n"))
        finally:
            transport.close()

    def _skipped(self, step: str) -> bool:
        """The step's Skipif holds: `onpath <program>` (on the component's PATH) or `exists <file>`."""
        condition = self.steps[step].skip_if
        if not condition:
            return False
        kind, _, target = condition.partition(" ")
        target = target.strip()
        if kind == "onpath":
            skip = shutil.which(target, path={**self.env, **self.steps[step].env}.get("PATH")) is not None
        elif kind == "exists":
            skip = Path(target).exists()
        else:
            self.log.write("lifecycle", f"{step}: Skipif {condition!r} is neither `onpath X` nor `exists X`; run")
            return False
        if skip:
            self.log.write("lifecycle", f"{step} skipped: {condition}")
        return skip

    async def _exit_code(self, step: str) -> int | None:
        """Run a step to its end: its exit code, 0 when it is absent or skipped, None on a timeout."""
        if step not in self.steps or self._skipped(step):
            return 0
        timeout = self.steps[step].timeout
        process = await self._spawn(step)
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            self.log.write("lifecycle", f"{step} timed out after {timeout:.0f}s")
            await _kill(process)
            return None
        if code != 0:
            self.log.write("lifecycle", f"{step} exited with {code}")
        return code

    async def _run_step(self, step: str) -> bool:
        """Run a step to its end; False on a non-zero exit or a timeout."""
        return await self._exit_code(step) == 0

    async def _bootstrap(self) -> bool:
        """Bootstrap runs before Install when a deployment brings the component in or changes it. Exit 100 asks
        for a restart of the core, emulated by going on as a restarted core would; 101 asks for a reboot of the
        host, which localgg cannot do: it is reported, and the component goes on."""
        code = await self._exit_code("Bootstrap")
        if code == REQUEST_CORE_RESTART:
            self.log.write("lifecycle", "Bootstrap asked for a core restart (100): emulated, the lifecycle goes on")
        elif code == REQUEST_HOST_REBOOT:
            self.log.write("lifecycle", "Bootstrap asked for a host reboot (101): localgg does not reboot the host")
            log.warning(
                "%s: Bootstrap asked for a host reboot (exit 101); reboot it yourself if it needs one", self.name
            )
        return code in (0, REQUEST_CORE_RESTART, REQUEST_HOST_REBOOT)

    # Supervision -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"component {self.name}")

    async def _supervise(self) -> None:
        bootstrapped, installed = False, False
        while not self._stopping:
            if not bootstrapped:
                bootstrapped = await self._bootstrap()
                if not bootstrapped:
                    if await self._errored():
                        return
                    continue
            if not installed:
                installed = await self._run_step("Install")
                if not installed:
                    if await self._errored():
                        return
                    continue
                self._set(State.INSTALLED)
            ok = await self._start_once()
            if self._stopping:
                return
            if ok:
                self._set(State.FINISHED)
                return
            if await self._errored():
                return

    async def _start_once(self) -> bool:
        """Startup or Run; True when the component finished cleanly (or runs on after Startup)."""
        self._reported_error = False
        self._set(State.STARTING)
        if "Startup" in self.steps and not self._skipped("Startup"):
            if not await self._run_step("Startup"):
                return False
            self._set(State.RUNNING)
            await self._wait_stopping_or_error()
            return not self._reported_error
        if "Run" not in self.steps or self._stopping or self._skipped("Run"):
            return True
        self._process = await self._spawn("Run")
        self._set(State.RUNNING)
        code = await self._process.wait()
        self._process = None
        if not self._stopping and code != 0:
            self.log.write("lifecycle", f"Run exited with {code}")
        return code == 0 and not self._reported_error

    async def _wait_stopping_or_error(self) -> None:
        while not self._stopping and not self._reported_error:
            await self._changed.wait()

    async def _errored(self) -> bool:
        """Count an error; True when the component is now BROKEN."""
        self.errors += 1
        self._set(State.ERRORED)
        if self.errors >= MAX_ERRORS:
            self._set(State.BROKEN)
            return True
        await self._run_step("Recover")
        await asyncio.sleep(RESTART_DELAY)
        return self._stopping

    def report(self, state: str) -> None:
        """UpdateState from the component itself over IPC."""
        if state == "RUNNING" and self.state is State.STARTING:
            self._set(State.RUNNING)
        elif state == "ERRORED" and self.state in (State.STARTING, State.RUNNING):
            self._reported_error = True
            self.log.write("lifecycle", "the component reported ERRORED")
            if self._process is not None:
                _signal_group(self._process, signal.SIGTERM)
            self._changed.set()

    async def stop(self) -> None:
        """Shutdown script, then SIGTERM to every process group the component's scripts started, SIGKILL to
        what is left after the grace period: nothing a script started (`sleep 100 &` included) outlives it."""
        if self._supervisor is None:
            return
        self._stopping = True
        if self.state in (State.STARTING, State.RUNNING):
            self._set(State.STOPPING)
            await self._run_step("Shutdown")
        self._changed.set()
        # A step the supervisor was starting as the stop came (a Run being spawned) is ended too: processes are
        # ended until the supervisor has wound down, not once before it.
        deadline = time.monotonic() + SUPERVISOR_GRACE
        while not self._supervisor.done() and time.monotonic() < deadline:
            await self._end_processes()
            await asyncio.wait({self._supervisor}, timeout=0.05)
        if not self._supervisor.done():
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._end_processes()  # whatever started while the supervisor wound down
        if self.state is not State.BROKEN:
            self._set(State.FINISHED)
        self.log.close()

    async def _end_processes(self) -> None:
        ending = set(self._groups)
        self._groups = {group for group in self._groups if _signal_pgid(group, signal.SIGTERM)}
        deadline = time.monotonic() + STOP_GRACE
        while self._groups and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            self._groups = {group for group in self._groups if _signal_pgid(group, 0)}
        for group in self._groups:
            _signal_pgid(group, signal.SIGKILL)
        self._groups.clear()
        if self.ledger is not None:
            for group in ending:
                self.ledger.discard(group)
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                await self._process.wait()


def _signal_pgid(group: int, signum: int) -> bool:
    """Signal a process group; False when no live process of it is left."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return bool(live_members(group))


def _signal_group(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def _kill(process: asyncio.subprocess.Process) -> None:
    _signal_group(process, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await process.wait()
