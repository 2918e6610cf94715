"""A small async client of the JupyterHub REST API, used by the goldenhub service with its
own token (the service talks to the hub only through this API)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError


class HubAPIError(RuntimeError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


class HubAPI:
    def __init__(self, url: str | None = None, token: str | None = None):
        self.url = (url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]

    async def request(self, method: str, path: str, body: dict | None = None, ok=(200, 201, 202, 204)):
        client = AsyncHTTPClient()
        try:
            r = await client.fetch(
                self.url + path, method=method, raise_error=False, request_timeout=60,
                headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
                allow_nonstandard_methods=True,
            )
        except (OSError, HTTPClientError) as e:
            raise HubAPIError(502, f"The hub did not answer: {e}") from None
        if r.code not in ok:
            try:
                message = json.loads(r.body).get("message") or r.reason
            except ValueError:
                message = r.reason
            raise HubAPIError(r.code, message)
        return json.loads(r.body) if r.body else None

    async def user(self, name: str) -> dict | None:
        try:
            return await self.request("GET", f"/users/{quote(name, safe='')}?include_stopped_servers=1")
        except HubAPIError as e:
            if e.status == 404:
                return None
            raise

    async def users(self) -> list[dict]:
        return await self.request("GET", "/users?include_stopped_servers=1")

    async def stop_server(self, name: str, server: str = "", timeout: float = 120,
                          start_grace: float = 0) -> None:
        """Stop one server of the user (the default one: "") and wait until the hub says it
        is gone. `start_grace`: seconds a start in flight gets to end by itself first (under
        a reset marker the spawner ends it with a sentence for the student; a start cancelled
        through the hub shows them a bare error)."""
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
            return
        await self.request("DELETE", path, ok=(202, 204, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not running(await self.user(name)):
                return
            await asyncio.sleep(0.5)
        which = f"server {server!r}" if server else "server"
        raise HubAPIError(504, f"The {which} of {name} did not stop within {timeout:.0f} seconds")
