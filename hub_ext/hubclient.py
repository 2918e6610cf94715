"""The one async client of JupyterHub's REST API, used by the goldenhub service (with its
own token) and by the `goldenhub` command line (with an admin's token, through asyncio.run).

Collections are paginated as JupyterHub pages them: the hub returns at most 200 users per
request, so `items()` asks for the pagination media type and follows `_pagination.next`
until the last page (a caller never sees a silently truncated list). The same client, given
the service's base URL, calls the goldenhub service's API through the hub's proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

PAGINATION = "application/jupyterhub-pagination+json"
TIMEOUT = 60  # seconds for one request, unless the caller gives another


class HubAPIError(RuntimeError):
    """An answer outside `ok`: its HTTP status and the hub's message. `reached` is False
    when no answer came at all (connection refused, timeout)."""

    def __init__(self, status: int, message: str, reached: bool = True):
        self.status = status
        self.reached = reached
        super().__init__(message)


class HubAPI:
    """A REST API at `url` (default: the hub's, from JUPYTERHUB_API_URL), called with `token`."""

    def __init__(self, url: str | None = None, token: str | None = None):
        self.url = (url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]

    async def request(self, method: str, path: str, body: dict | None = None, ok=(200, 201, 202, 204), *,
                      params: dict | None = None, headers: dict | None = None, timeout: float = TIMEOUT):
        """The answer's JSON (None when it has no body or no JSON); HubAPIError otherwise."""
        url = self.url + path
        if params:
            url += ("&" if "?" in path else "?") + urlencode(params)
        try:
            r = await AsyncHTTPClient().fetch(
                url, method=method, raise_error=False, request_timeout=timeout,
                headers={"Authorization": f"token {self.token}", "Content-Type": "application/json",
                         **(headers or {})},
                body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
                allow_nonstandard_methods=True,
            )
        except HTTPClientError as e:
            if e.code == 599:  # tornado's code for a request that timed out
                raise HubAPIError(504, f"{method} {url} got no answer within {timeout:.0f} s", reached=False) from None
            raise HubAPIError(502, f"The hub did not answer: {e}", reached=False) from None
        except OSError as e:
            raise HubAPIError(502, f"The hub did not answer: {e}", reached=False) from None
        try:
            data = json.loads(r.body) if r.body else None
        except ValueError:
            data = None
        if r.code not in ok:
            message = data.get("message") if isinstance(data, dict) else None
            raise HubAPIError(r.code, message or r.reason)
        return data

    async def items(self, path: str) -> list:
        """Every item of a paginated collection (e.g. /users), page after page."""
        items: list = []
        offset = 0
        while True:
            page = await self.request("GET", path, params={"offset": offset}, headers={"Accept": PAGINATION})
            if isinstance(page, list):  # a hub too old to page: it sent everything it would
                return page
            items += page["items"]
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return items
            offset = following["offset"]

    async def user(self, name: str) -> dict | None:
        try:
            return await self.request("GET", f"/users/{quote(name, safe='')}?include_stopped_servers=1")
        except HubAPIError as e:
            if e.status == 404:
                return None
            raise

    async def users(self) -> list[dict]:
        """Every user, with their servers (stopped ones too)."""
        return await self.items("/users?include_stopped_servers=1")

    async def active_users(self) -> list[dict]:
        """The users with a running or starting server, with those servers only. A loop that
        looks every minute asks for these: the hub builds each user's model on its event loop,
        and a department has thousands of users but a class's worth of servers."""
        return await self.items("/users?state=active")

    async def group_members(self, name: str) -> list[str]:
        """The names of a group's members; [] for a group that does not exist."""
        try:
            return (await self.request("GET", f"/groups/{quote(name, safe='')}"))["users"]
        except HubAPIError as e:
            if e.status == 404:
                return []
            raise

    async def create_users(self, names: list[str]) -> None:
        """Create these hub users (all in one request); names that exist are left as they are."""
        if names:
            await self.request("POST", "/users", {"usernames": list(names)}, ok=(200, 201, 409))

    async def ensure_group(self, name: str) -> None:
        """Create the hub group if it does not exist yet."""
        await self.request("POST", f"/groups/{quote(name, safe='')}", {}, ok=(200, 201, 409))

    async def add_to_group(self, name: str, users: list[str]) -> None:
        """Add these users to the group (created first if missing), in one request."""
        if users:
            await self.ensure_group(name)
            await self.request("POST", f"/groups/{quote(name, safe='')}/users", {"users": list(users)})

    async def remove_from_group(self, name: str, users: list[str]) -> None:
        """Remove these users from the group, in one request (a missing group: nothing to do)."""
        if users:
            await self.request("DELETE", f"/groups/{quote(name, safe='')}/users", {"users": list(users)},
                               ok=(200, 204, 404))

    async def stop_server(self, name: str, server: str = "", timeout: float = 120,
                          start_grace: float = 0) -> bool:
        """Stop one server of the user (the default one: "") and wait until the hub says it
        is gone; False when it was not running. `start_grace`: seconds a start in flight
        gets to end by itself first (under a reset marker the spawner ends it with a
        sentence for the student; a start cancelled through the hub shows them a bare error)."""
        base = f"/users/{quote(name, safe='')}"
        path = f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"

        def running(model: dict | None) -> bool:
            found = (model or {}).get("servers", {}).get(server)
            return bool(found and (found.get("ready") or found.get("pending")))

        grace_until = time.monotonic() + start_grace
        while True:
            model = await self.user(name)
            pending = ((model or {}).get("servers", {}).get(server) or {}).get("pending")
            if pending != "spawn" or time.monotonic() >= grace_until:
                break
            await asyncio.sleep(0.5)
        if not running(model):
            return False
        await self.request("DELETE", path, ok=(202, 204, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not running(await self.user(name)):
                return True
            await asyncio.sleep(0.5)
        which = f"server {server!r}" if server else "server"
        raise HubAPIError(504, f"The {which} of {name} did not stop within {timeout:.0f} seconds")
