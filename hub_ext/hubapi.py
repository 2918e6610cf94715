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

    async def stop_server(self, name: str, timeout: float = 120) -> None:
        """Stop the user's default server and wait until the hub says it is gone."""
        user = await self.user(name)
        server = (user or {}).get("servers", {}).get("")
        if not server or not (server.get("ready") or server.get("pending")):
            return
        await self.request("DELETE", f"/users/{quote(name, safe='')}/server", ok=(202, 204, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = await self.user(name)
            server = (user or {}).get("servers", {}).get("")
            if not server or not (server.get("ready") or server.get("pending")):
                return
            await asyncio.sleep(0.5)
        raise HubAPIError(504, f"The server of {name} did not stop within {timeout:.0f} seconds")
