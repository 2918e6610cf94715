"""SFTP inside the user's own container, as uid 1000: never on the host.

The SFTP subsystem channel is piped to `docker exec -i -u 1000 <their container>
/usr/lib/openssh/sftp-server`, so every path is resolved by the container's kernel view: a
student's symlink reaches only what the student could reach in a terminal.
Rules: the container is the one the hub's spawner names for this user (hub_ext.contract), and
must be running; its image must carry the server (images/base/Dockerfile installs
openssh-sftp-server), else the student is told so. The exec ends when either side closes.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable

from hub_ext import contract
from hub_ext.i18n import _
from hub_ext.ssh.auth import Login, Refused

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
STUDENT_UID = "1000"
MISSING = 127  # sh's "not found": the image has no sftp-server


def make_exec_args(container: str) -> list[str]:
    return ["docker", "exec", "-i", "-u", STUDENT_UID, container, SFTP_SERVER]


async def run_sftp(process, login: Login, touch: Callable[[], None]) -> int:
    """Pipe the subsystem channel to sftp-server in their container; returns its exit status."""
    container = contract.container_name(os.environ.get("GOLDENHUB_PREFIX", "goldenhub"), login.name)
    child = await asyncio.create_subprocess_exec(*make_exec_args(container), stdin=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def upstream():
        while data := await process.stdin.read(65536):
            touch()
            child.stdin.write(data)
            await child.stdin.drain()
        child.stdin.close()

    async def downstream():
        while data := await child.stdout.read(65536):
            touch()
            process.stdout.write(data)
            await process.stdout.drain()

    feeder = asyncio.ensure_future(upstream())
    try:
        await downstream()
        status = await child.wait()
    finally:
        feeder.cancel()
        if child.returncode is None:
            child.kill()
            await child.wait()
    if status != 0:
        errors = (await child.stderr.read(4096)).decode(errors="replace")
        if status in (MISSING, 126) or "no such file" in errors.lower() or "not found" in errors.lower():
            raise Refused(_("SFTP is not available in this environment's image; ask your instructor to "
                            "rebuild it."))
        if "is not running" in errors or "No such container" in errors:
            raise Refused(_("Your server is not running; connect again to start it."))
    return status
