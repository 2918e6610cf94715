"""A shell or one command over SSH, run in a Jupyter terminal of the user's own server.

The terminal (POST /user/<name>/api/terminals, then its websocket, both with the user's
token) is a login shell inside their container, as them. Messages are terminado's:
["stdin", text], ["set_size", rows, cols], and from the server ["stdout", text] and
["disconnect", ...].

Rules:
- A shell forwards both ways until either side ends; a window change is a set_size. The
  terminal reports no exit status, so a shell ends with 0.
- A command (exec request) is typed into a fresh terminal as base64 (so no quoting or
  newline of the command reaches the shell's parser), with echo off, between two markers
  printed by printf from octal escapes: the typed line holds the escapes, never the marker
  bytes, so only the command's own output lies between them. The end marker carries its
  status, which becomes the SSH exit status. Without a pty, \r\n from the terminal becomes
  \n, and stderr comes mixed into stdout (a terminal has one stream).
- A command is at most MAX_COMMAND bytes. The terminal is deleted when the session ends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Callable
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

from hub_ext.i18n import _
from hub_ext.i18n.format import size_text
from hub_ext.ssh.auth import Login, Refused, hub_url, request

MAX_COMMAND = 64 * 1024
BEGIN, END = "\x1eGHB\x1e", "\x1eGHE"
END_STATUS = re.compile("\x1eGHE(\\d{1,3})\x1e")
MAX_MESSAGE = 4 * 1024 * 1024


def exec_line(command: str, pty: bool = False) -> str:
    """What is typed into the terminal to run COMMAND between the markers, then leave. The
    command runs in a subshell (its `exit N` is its status); without a pty its output goes
    through a pipe, as an SSH command's would (no colours, one name a line from ls)."""
    encoded = base64.b64encode(command.encode()).decode()
    run = f"( eval \"$(printf %s '{encoded}' | base64 -d)\" )"
    run = f"{run}; __gh=$?" if pty else f"{run} 2>&1 | cat; __gh=${{PIPESTATUS[0]}}"
    return (" stty -echo 2>/dev/null; printf '\\036GHB\\036'; "
            f"{run}; printf '\\036GHE%d\\036' \"$__gh\"; exit \"$__gh\"\r")


class ExecOutput:
    """Picks the command's output and status out of the terminal's stream."""

    def __init__(self, pty: bool):
        self.pty = pty
        self.buffer = ""
        self.started = False
        self.status: int | None = None

    def feed(self, text: str) -> str:
        if self.status is not None:
            return ""
        self.buffer += text
        if not self.started:
            at = self.buffer.find(BEGIN)
            if at < 0:
                self.buffer = self.buffer[-len(BEGIN):]
                return ""
            self.started, self.buffer = True, self.buffer[at + len(BEGIN):]
        end = END_STATUS.search(self.buffer)
        if end:
            out, self.status, self.buffer = self.buffer[:end.start()], int(end.group(1)), ""
        else:
            cut = self.buffer.rfind("\x1e")  # a marker may be cut between two messages
            cut = len(self.buffer) if cut < 0 else cut
            out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out if self.pty else out.replace("\r\n", "\n")


class Terminal:
    """One Jupyter terminal of LOGIN's server."""

    def __init__(self, login: Login):
        self.login = login
        self.base = f"{hub_url()}/user/{quote(login.name)}"
        self.name = ""
        self.socket = None

    async def open(self, rows: int, cols: int) -> None:
        response = await AsyncHTTPClient().fetch(
            request(f"{self.base}/api/terminals", self.login.token, "POST", "{}"), raise_error=False)
        if response.code != 200:
            raise Refused(_("Your server did not open a terminal (%(code)s); is it running?", code=response.code))
        self.name = str(json.loads(response.body).get("name", ""))
        ws = self.base.replace("http", "ws", 1) + f"/terminals/websocket/{quote(self.name)}"
        self.socket = await websocket_connect(request(ws, self.login.token), max_message_size=MAX_MESSAGE)
        self.resize(rows, cols)

    def send(self, text: str) -> None:
        self.socket.write_message(json.dumps(["stdin", text]))

    def resize(self, rows: int, cols: int) -> None:
        if rows > 0 and cols > 0:
            self.socket.write_message(json.dumps(["set_size", min(rows, 1000), min(cols, 1000)]))

    async def read(self) -> str | None:
        """The next output text; None when the terminal ended."""
        while True:
            message = await self.socket.read_message()
            if message is None:
                return None
            try:
                kind, *rest = json.loads(message)
            except (ValueError, TypeError):
                continue
            if kind == "stdout" and rest:
                return str(rest[0])
            if kind == "disconnect":
                return None

    async def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.name:
            await AsyncHTTPClient().fetch(
                request(f"{self.base}/api/terminals/{quote(self.name)}", self.login.token, "DELETE"),
                raise_error=False)


async def run_session(process, login: Login, touch: Callable[[], None]) -> int:
    """A shell (no command) or one command in a terminal; returns the exit status."""
    import asyncssh

    command = process.command
    if command is not None and len(command.encode()) > MAX_COMMAND:
        raise Refused(_("The command is longer than %(size)s.", size=size_text(MAX_COMMAND)))
    pty = process.get_terminal_type() is not None
    cols, rows = process.get_terminal_size()[:2] if pty else (200, 50)
    terminal = Terminal(login)
    try:
        await terminal.open(rows, cols)
        parser = ExecOutput(pty) if command is not None else None
        if parser is not None:
            terminal.send(exec_line(command, pty))

        async def upstream():
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.TerminalSizeChanged as change:
                    terminal.resize(change.height, change.width)
                    continue
                except asyncssh.BreakReceived:
                    continue
                touch()
                if not data:
                    if parser is not None:
                        terminal.send("\x04")  # end of the command's input
                    return
                terminal.send(data.decode(errors="replace"))

        feeder = asyncio.ensure_future(upstream())
        try:
            while (text := await terminal.read()) is not None:
                touch()
                out = parser.feed(text) if parser is not None else text
                if out:
                    process.stdout.write(out.encode())
                if parser is not None and parser.status is not None:
                    break
        finally:
            feeder.cancel()
        return parser.status if parser is not None and parser.status is not None else 0
    finally:
        await terminal.close()
