"""The environment a component's steps start from: what a nucleus installed as a system service passes on.

The nucleus hands each step its own process environment (UnixExec.createProcess: a ProcessBuilder, whose
environment Java copies from the nucleus's own, with Exec.defaultEnvironment put over it: PATH, HOME, JAVA_HOME),
then the component's variables (SVCUID, the IPC socket, the thing name, the Region) and the recipe's Setenv;
`sudo -E -H` keeps that for another user but for what sudo's env_delete names, with that user's HOME.

Installed with `--setup-system-service true` (the installer's greengrass.service), the nucleus's own environment is
systemd's for a system service: a fixed PATH and the system's locale, nothing of the shell that installed it
(systemd.exec(5), "Environment Variables in Spawned Processes"). So no AWS keys, GitHub token or SSH agent of the
operator reaches a component. localgg starts from the same whoever's shell runs it, plus the variables a device's
unit would declare with Environment= (which engine its Docker CLI talks to, for one): `kept`.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Mapping

# systemd's PATH for the services it starts (a merged /usr and the split one alike).
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOCALE = "C.UTF-8"  # the system locale of a Debian image with no locale configured


def of_service(kept: Iterable[str] = (), shell: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The nucleus's own environment as a system service: PATH, the locale and HOME (the nucleus's user's, as
    Exec.defaultEnvironment sets it from user.home), plus each `kept` variable the `shell` has."""
    environment = {"PATH": SERVICE_PATH, "LANG": LOCALE, "HOME": pwd.getpwuid(os.getuid()).pw_dir}
    environment.update({name: shell[name] for name in kept if name in shell})
    return environment
