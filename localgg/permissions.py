"""File modes and owners in the core's folders, as the nucleus sets them.

- An artifact's mode comes from its recipe `Permission` (componentmanager.models.Permission.toFileSystemPermission):
  the owner may always read; `Read: OWNER` lets the owner's group read too, `ALL` everyone; `Execute: OWNER` adds
  execute (and read) for the owner and its group, `ALL` for everyone. Nobody may write, bar the owner when the
  nucleus is not root (Permissions.setArtifactPermission). Folders, an unarchived one's too, are 0755.
- The files inside a component's artifact folders, and its whole work folder, belong to the component's user
  (RunWithPathOwnershipHandler.updateOwner); the artifact folders themselves stay the nucleus's, so the component
  cannot add files there.

Links are never followed: a link planted in a folder changes the link, not what it points at.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from localgg.runwith import RunWith

FOLDER = 0o755


def artifact_mode(read: str, execute: str) -> int:
    mode = 0o400
    if read in ("OWNER", "ALL") or execute in ("OWNER", "ALL"):
        mode |= 0o040
    if read == "ALL" or execute == "ALL":
        mode |= 0o004
    if execute in ("OWNER", "ALL"):
        mode |= 0o110
    if execute == "ALL":
        mode |= 0o001
    if os.geteuid() != 0:
        mode |= 0o200  # Permissions.setArtifactPermission: not root, the owner keeps write
    return mode


def set_artifact_permission(path: Path, mode: int) -> None:
    """A file gets `mode`; a folder 0755 and each file under it `mode`."""
    if path.is_symlink():
        return
    if path.is_dir():
        os.chmod(path, FOLDER, follow_symlinks=False)
        for child in path.iterdir():
            set_artifact_permission(child, mode)
    elif path.is_file():
        os.chmod(path, mode, follow_symlinks=False)


def give(path: Path, who: RunWith, including_itself: bool) -> None:
    """`path`'s contents (and `path` itself if asked), recursively, owned by `who`; nothing to do when the nucleus
    already is `who` or cannot change owners (not root)."""
    if not path.exists() or os.geteuid() != 0:
        return
    if including_itself:
        os.chown(path, who.uid, who.gid, follow_symlinks=False)
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            give(child, who, including_itself=True)


class RootNotOwned(PermissionError):
    """The core's folder is one another user could change under it; the message says how."""


def own_root(root: Path) -> Path:
    """The core's folder, made 0755 if missing (components as ggc_user go through it to their work folders and the
    IPC socket, as through /greengrass/v2), or refused: a link, a folder of another user, or one that its group or
    others may write to (where anyone could plant a link the core would then write through as root)."""
    if not root.exists() and not root.is_symlink():
        root.mkdir(parents=True)
        os.chmod(root, FOLDER)  # whatever the umask
    found = os.lstat(root)
    if not stat.S_ISDIR(found.st_mode):
        raise RootNotOwned(f"{root} is a link or not a folder: give the core a folder of its own")
    if found.st_uid != os.geteuid():
        raise RootNotOwned(f"{root} belongs to uid {found.st_uid}, not to this core's user (uid {os.geteuid()})")
    if found.st_mode & 0o022:
        raise RootNotOwned(f"{root} is writable by its group or others (mode {found.st_mode & 0o777:o}): chmod go-w")
    return root
