"""Who a component's lifecycle steps run as, and how a command is made to run as them, as the nucleus does it.

The nucleus runs each step as the component's user: the default set at install time (`--component-default-user
ggc_user:ggc_group`, `runWithDefault.posixUser`), or its own user when none is set. A step is decorated with
`sudo -n -E -H -u USER -g GROUP --` unless it already runs as that user and group (UnixPlatform.SudoDecorator); a
step with `RequiresPrivilege` runs as root the same way, so a nucleus running as root runs it undecorated. The
installer creates a missing default user and group as system ones (UnixPlatform.createUser: `useradd -r -m`,
createGroup: `groupadd -r`, addUserToGroup).

Files follow the user: the component's artifacts (inside its artifact folders, not the folders themselves) and its
work folder are chowned to it (RunWithPathOwnershipHandler.updateOwner).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass


class RunWithError(RuntimeError):
    """The user or group cannot be had; the message says which and why."""


@dataclass(frozen=True)
class RunWith:
    user: str
    group: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> RunWith:
        uid, gid = os.geteuid(), os.getegid()
        return cls(pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name, uid, gid)

    @classmethod
    def of(cls, spec: str, create: bool = False) -> RunWith:
        """`user[:group]` (the group defaults to the user's primary one). With `create`, a missing user and group
        are made as the installer makes them; that needs root."""
        user, _, group = spec.partition(":")
        if not user:
            raise RunWithError(f"{spec!r} names no user (expected user[:group])")
        if create:
            _ensure(user, group or None)
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise RunWithError(f"no user {user!r} on this machine (the installer creates it as root)") from None
        try:
            group_entry = grp.getgrnam(group) if group else grp.getgrgid(entry.pw_gid)
        except KeyError:
            raise RunWithError(f"no group {group!r} on this machine (the installer creates it as root)") from None
        return cls(entry.pw_name, group_entry.gr_name, entry.pw_uid, group_entry.gr_gid)

    @property
    def is_root(self) -> bool:
        return self.uid == 0


ROOT = RunWith("root", "root", 0, 0)


def decorate(command: list[str], who: RunWith, current: RunWith) -> list[str]:
    """`command` as `who` runs it from a process running as `current` (SudoDecorator.decorate)."""
    if who.uid == current.uid and who.gid == current.gid:
        return command
    return ["sudo", "-n", "-E", "-H", "-u", who.user, "-g", who.group, "--", *command]


def _ensure(user: str, group: str | None) -> None:
    def run(*command: str) -> None:
        if shutil.which(command[0], path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            raise RunWithError(f"`{command[0]}` is missing: the component user cannot be created")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RunWithError(f"`{' '.join(command)}` failed: {done.stderr.strip() or done.returncode}")

    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            run("groupadd", "-r", group)
    try:
        pwd.getpwnam(user)
    except KeyError:
        run("useradd", "-r", "-m", user)
    if group and user not in grp.getgrnam(group).gr_mem and pwd.getpwnam(user).pw_gid != grp.getgrnam(group).gr_gid:
        run("usermod", "-a", "-G", group, user)
