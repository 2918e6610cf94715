"""Branding over the REST API: PUT the raw bytes of a logo or favicon; GET what is in use.
Content is sniffed (hub_ext.branding.store); a refused upload changes nothing.

Rules for upload size: an upload body is streamed; at most MAX_UPLOAD bytes are kept, the
rest (up to READ_LIMIT) is read and dropped, so that an oversized upload is answered with a
413 sentence naming the limit, which reaches the client through the proxy (a server that
hangs up mid-upload makes the proxy answer with its own HTML error page instead).
"""

from __future__ import annotations

import asyncio

from tornado import httputil, web

from hub_ext.branding import store as branding
from hub_ext.paths import state_dir
from hub_ext.service.authz import Action
from hub_ext.service.base import APIHandler

MAX_UPLOAD = 2 * 2**20  # above every kind's own limit, so its message is the one seen
READ_LIMIT = 1024 * 2**20  # read (and dropped) to answer with a sentence; beyond it the connection closes


class BoundedUpload:
    """For @web.stream_request_body handlers: identity is established after the body
    arrived (a form's _xsrf field is in it), by calling identify() in the method."""

    def prepare(self):
        self.request.connection.set_max_body_size(READ_LIMIT)
        self._kept: list[bytes] = []
        self._received = 0

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= MAX_UPLOAD:
            self._kept.append(chunk)

    def upload_body(self) -> bytes:
        if self._received > MAX_UPLOAD:
            raise web.HTTPError(413, f"The upload is {self._received / 2**20:.1f} MiB; an upload may be at most "
                                     f"{MAX_UPLOAD // 2**20} MiB (a logo at most {branding.MAX_BYTES['logo'] // 1024} "
                                     f"KiB, a favicon at most {branding.MAX_BYTES['favicon'] // 1024} KiB). "
                                     "Choose a smaller image.")
        return b"".join(self._kept)

    def parse_form(self) -> None:
        """Form fields and files of the streamed body, where get_argument and
        request.files look for them."""
        body = self.upload_body()
        args: dict[str, list[bytes]] = {}
        httputil.parse_body_arguments(self.request.headers.get("Content-Type", ""), body, args,
                                      self.request.files, self.request.headers)
        for name, values in args.items():
            self.request.body_arguments.setdefault(name, []).extend(values)
            self.request.arguments.setdefault(name, []).extend(values)


@web.stream_request_body
class BrandingHandler(BoundedUpload, APIHandler):
    async def get(self, kind: str):
        await self.identify()
        try:
            current = branding.describe(state_dir(), kind)
        except branding.BrandingError as e:
            raise web.HTTPError(404, str(e))
        self.write_json({"kind": kind, "mime": current.mime, "sha256": current.sha256, "custom": current.custom})

    async def put(self, kind: str):
        body = self.upload_body()
        await self.identify()
        self.rules.require_now(Action.BRANDING, what=f"Uploading a {kind}")
        try:
            upload = branding.store_branding(state_dir(), kind, body)
        except branding.BrandingError as e:
            raise web.HTTPError(400, str(e))
        await asyncio.to_thread(self.ctx.audit, self.username, f"upload-{kind}", "", "", "ok", upload.mime)
        self.write_json({"kind": kind, "mime": upload.mime})

    async def delete(self, kind: str):
        await self.identify()
        self.rules.require_now(Action.BRANDING, what=f"Changing the {kind}")
        try:
            branding.reset_branding(state_dir(), kind)
        except branding.BrandingError as e:
            raise web.HTTPError(404, str(e))
        self.write_json({"kind": kind, "custom": False})


def handlers(prefix: str) -> list:
    return [(prefix + r"api/branding/(\w+)", BrandingHandler)]
