"""Who may log in (a hub token of the SSH username itself) and their server, started if needed.

Rules:
- A username is a hub username: full match of USERNAME, at most 64 characters; a password at
  most 512 characters. Anything else is refused like a wrong token (the hub is still asked,
  so a refusal takes the same time whichever part was wrong).
- The token's owner (GET /hub/api/user with it) must be that user, compared timing-safe, and
  the token must hold the scope to access that user's server. Starting a stopped server
  needs the scope to start it too; a token without it is told so, nothing is started.
- Starting: POST /hub/api/users/<name>/server with the template of their last start (the
  hub keeps a stopped server's user_options), else with none, so the hub's rules apply (their
  only template; with several, the hub's refusal names them and they choose in the browser).
  The spawner checks the template is still theirs. The wait is bounded (START_SECONDS) and
  ends with a sentence.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hub_ext import contract
from hub_ext.i18n import _, ngettext

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MAX_PASSWORD = 512
START_SECONDS = float(os.environ.get("GOLDENHUB_SSH_START_SECONDS", "300"))
POLL_SECONDS = 2.0


class Refused(Exception):
    """A sentence for the person at the SSH client (already translated)."""


@dataclass
class Login:
    name: str
    token: str
    scopes: frozenset[str]


def hub_api() -> str:
    return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api").rstrip("/")


def hub_url() -> str:
    """The hub's public address, through the proxy, where users' servers answer."""
    return os.environ.get("GOLDENHUB_SSH_HUB_URL", "http://127.0.0.1:8000").rstrip("/")


def loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def request(url: str, token: str, method: str = "GET", body: str | None = None,
            timeout: float = 30) -> HTTPRequest:
    # Our own hub on loopback may carry a certificate for its public name only.
    return HTTPRequest(url, method=method, body=body, headers={"Authorization": f"token {token}"},
                       request_timeout=timeout, validate_cert=not loopback(url), allow_nonstandard_methods=True)


async def fetch(url: str, token: str, method: str = "GET", body: str | None = None) -> tuple[int, dict]:
    response = await AsyncHTTPClient().fetch(request(url, token, method, body), raise_error=False)
    if response.code == 599:
        raise Refused(_("The hub did not answer; try again in a minute."))
    try:
        data = json.loads(response.body or b"{}")
    except ValueError:
        data = {}
    return response.code, data if isinstance(data, dict) else {}


def server_scopes(name: str, action: str) -> set[str]:
    """The scopes that let a token act (`access:servers` or `servers`) on NAME's server."""
    return {action, f"{action}!user={name}", f"{action}!server={name}/"}


async def check_token(username: str, password: str) -> Login | None:
    """The login when PASSWORD is a token of USERNAME that may access USERNAME's server."""
    wellformed = bool(USERNAME.fullmatch(username)) and 0 < len(password) <= MAX_PASSWORD \
        and password.isascii() and password.isprintable()
    token = password if wellformed else "x" * 32
    try:
        code, data = await fetch(f"{hub_api()}/user", token)
    except Refused:
        return None
    owner = data.get("name") if code == 200 else None
    same = hmac.compare_digest(str(owner or "").encode(), username.encode())
    scopes = frozenset(s for s in data.get("scopes", []) if isinstance(s, str))
    if not (wellformed and same and scopes & server_scopes(username, "access:servers")):
        return None
    return Login(username, password, scopes)


async def ensure_server(login: Login, say) -> None:
    """Their server running and ready, started if stopped; SAY(text) tells them while waiting."""
    url = f"{hub_api()}/users/{quote(login.name)}"
    code, user = await fetch(f"{url}?include_stopped_servers=1", login.token)
    server = (user.get("servers") or {}).get("") if code == 200 else None
    if server and server.get("ready"):
        return
    if not server or server.get("stopped"):
        if not login.scopes & server_scopes(login.name, "servers"):
            raise Refused(_("Your server is not running and this token may not start it. Start it in the "
                            "browser, or use a token with the scope to start your server."))
        last = (server or {}).get("user_options") or {}
        options = {contract.OPTION_TEMPLATE: last[contract.OPTION_TEMPLATE]} \
            if isinstance(last.get(contract.OPTION_TEMPLATE), str) else {}
        code, answer = await fetch(f"{url}/server", login.token, "POST", json.dumps(options))
        message = str(answer.get("message") or code)[:500]
        if code not in (201, 202):  # 202 too when another session of theirs is starting it
            raise Refused(_("Your server could not start: %(reason)s", reason=message))
        if code == 201:
            return
    say(_("Starting your server, this can take a few minutes...") + "\r\n")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    while loop.time() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        code, user = await fetch(url, login.token)
        server = (user.get("servers") or {}).get("") if code == 200 else None
        if server and server.get("ready"):
            return
        if not server or server.get("stopped"):
            raise Refused(_("Your server stopped while starting; open the hub in the browser to see why."))
    minutes = max(1, int(START_SECONDS // 60))
    raise Refused(ngettext("Your server did not become ready in %(num)d minute; try again later.",
                           "Your server did not become ready in %(num)d minutes; try again later.", minutes))
