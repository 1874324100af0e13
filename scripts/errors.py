"""The tooling's one error base and its exit statuses. Standard library only (scripts/building/machine.py uses it
before any virtual environment exists)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1  # an expected failure: a ToolError, its message printed as one line
    USAGE = 2  # the command line was wrong (argparse's own code)
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class ToolError(RuntimeError):
    """A failure the tooling expects and explains: the command line prints `error: <message>` and exits FAILED,
    never a traceback. Every module's own error derives from it."""
