"""The SSH server (asyncssh): password logins with hub tokens, limits, the host key.

Rules:
- Only password authentication; at most MAX_AUTH_ATTEMPTS per connection, then the
  connection closes; LOGIN_SECONDS to log in at all.
- At most MAX_CONNECTIONS in total (more are closed before authentication) and
  MAX_PER_USER per user (a further login is refused with a sentence).
- A connection with no data either way for IDLE_SECONDS is closed.
- A session is a shell, one command (shell.py) or the sftp subsystem (sftp.py); the user's
  server is started first if needed (auth.ensure_server). No port forwarding, no agent, no
  X11, no scp.
- Messages are in the client's language (its LANG), else the platform's.
- The host key is generated once into <state dir>/ssh_host_ed25519_key (0600) and reused,
  so clients see the same key after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import asyncssh

from hub_ext import i18n
from hub_ext.i18n import _
from hub_ext.ssh import auth
from hub_ext.ssh.auth import Refused
from hub_ext.ssh.shell import run_session
from hub_ext.ssh.sftp import run_sftp

log = logging.getLogger("goldenhub.ssh")

MAX_AUTH_ATTEMPTS = 3
LOGIN_SECONDS = 60
MAX_CONNECTIONS = 200
MAX_PER_USER = 5
IDLE_SECONDS = float(os.environ.get("GOLDENHUB_SSH_IDLE_SECONDS", "3600"))
HOST_KEY = "ssh_host_ed25519_key"


def ensure_host_key(state_dir: Path) -> Path:
    """The server's key, made once (0600) and kept across restarts."""
    path = state_dir / HOST_KEY
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
    os.chmod(path, 0o600)
    return path


class Limits:
    """Connections counted in total and per user, in this process."""

    def __init__(self):
        self.total = 0
        self.per_user: dict[str, int] = {}


class GoldenSSHServer(asyncssh.SSHServer):
    def __init__(self, limits: Limits):
        self.limits = limits
        self.attempts = 0
        self.login: auth.Login | None = None
        self.conn = None
        self.last_active = time.monotonic()
        self.watch: asyncio.Task | None = None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def connection_made(self, conn) -> None:
        self.conn = conn
        self.limits.total += 1
        if self.limits.total > MAX_CONNECTIONS:
            log.warning("refusing a connection: %d open", self.limits.total - 1)
            conn.close()
            return
        self.watch = asyncio.ensure_future(self._idle_watch())

    def connection_lost(self, exc) -> None:
        self.limits.total -= 1
        if self.watch:
            self.watch.cancel()
        if self.login:
            left = self.limits.per_user.get(self.login.name, 1) - 1
            if left > 0:
                self.limits.per_user[self.login.name] = left
            else:
                self.limits.per_user.pop(self.login.name, None)

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(min(IDLE_SECONDS, 30))
            if time.monotonic() - self.last_active > IDLE_SECONDS:
                log.info("closing an idle connection of %s", self.login.name if self.login else "nobody")
                self.conn.close()
                return

    def session_requested(self):
        """Every session channel: a shell, one command or sftp (handle)."""
        return PipedProcess(self.handle, None, 0, False)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        self.touch()
        self.attempts += 1
        if self.attempts > MAX_AUTH_ATTEMPTS:
            self.conn.close()
            return False
        login = await auth.check_token(username, password)
        if login is None:
            log.info("refused a login as %r", username[:64])
            if self.attempts >= MAX_AUTH_ATTEMPTS:
                self.conn.close()
            return False
        if self.limits.per_user.get(login.name, 0) >= MAX_PER_USER:
            log.warning("refused %s: %d connections open", login.name, MAX_PER_USER)
            self.conn.send_auth_banner(_("You have %(count)d SSH connections open already; close one and try "
                                         "again.", count=MAX_PER_USER) + "\r\n")
            return False
        self.login = login
        self.limits.per_user[login.name] = self.limits.per_user.get(login.name, 0) + 1
        log.info("%s logged in", login.name)
        return True

    async def handle(self, process) -> None:
        """One session channel: start their server if needed, then shell, command or sftp."""
        status = 1
        # the client's LANG (Debian's ssh sends it), else the platform's language
        lang = (process.env or {}).get("LANG") or (process.env or {}).get(b"LANG") or ""
        lang = lang.decode(errors="replace") if isinstance(lang, bytes) else str(lang)
        i18n.use(lang.split(".")[0][:35] or None)
        try:
            await auth.ensure_server(self.login, lambda text: process.stderr.write(text.encode()))
            if process.subsystem == "sftp":
                status = await run_sftp(process, self.login, self.touch)
            else:
                status = await run_session(process, self.login, self.touch)
        except Refused as refusal:
            process.stderr.write(f"{refusal}\r\n".encode())
        except (asyncssh.Error, OSError, ConnectionError) as e:
            log.info("session of %s ended: %s", self.login.name, e)
        except Exception:
            log.exception("session of %s failed", self.login.name)
            process.stderr.write((_("Something went wrong on the server; try again.") + "\r\n").encode())
        finally:
            try:
                process.exit(status)
            except (OSError, asyncssh.Error):
                pass


class PipedProcess(asyncssh.SSHServerProcess):
    """A session whose "sftp" subsystem comes to our handler like a shell or a command does:
    asyncssh would otherwise serve SFTP itself, on the host. Only session_started differs from
    asyncssh's (its last branch, for every session); it reads asyncssh's own attributes, so
    asyncssh's version is pinned in pyproject.toml."""

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        stdin = asyncssh.SSHReader(self, self._chan)
        stdout = asyncssh.SSHWriter(self, self._chan)
        stderr = asyncssh.SSHWriter(self, self._chan, asyncssh.constants.EXTENDED_DATA_STDERR)
        self._conn.create_task(self._start_process(stdin, stdout, stderr), stdin.logger)


async def serve(host: str, port: int, state_dir: Path) -> asyncssh.SSHAcceptor:
    limits = Limits()
    return await asyncssh.create_server(
        lambda: GoldenSSHServer(limits), host, port, server_host_keys=[str(ensure_host_key(state_dir))],
        encoding=None, allow_scp=False, agent_forwarding=False,
        x11_forwarding=False, login_timeout=LOGIN_SECONDS, keepalive_interval=60,
        line_editor=False, server_version="goldenhub")
