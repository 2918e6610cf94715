"""Branding over the REST API: PUT the raw bytes of a logo or favicon; GET what is in use.
Content is sniffed (hub_ext.branding); a refused upload changes nothing."""

from __future__ import annotations

from tornado import web

from hub_ext import branding
from hub_ext.paths import state_dir
from hub_ext.service.base import BRANDING_SCOPE, APIHandler

MAX_UPLOAD = 2 * 2**20  # above every kind's own limit, so its message is the one seen


class BrandingHandler(APIHandler):
    def get(self, kind: str):
        try:
            current = branding.describe(state_dir(), kind)
        except branding.BrandingError as e:
            raise web.HTTPError(404, str(e))
        self.write_json({"kind": kind, "mime": current.mime, "sha256": current.sha256, "custom": current.custom})

    def put(self, kind: str):
        if BRANDING_SCOPE not in self.scopes:
            raise web.HTTPError(403, f"Uploading a {kind} needs the scope {BRANDING_SCOPE}")
        if len(self.request.body) > MAX_UPLOAD:
            raise web.HTTPError(413, f"Upload too large: {len(self.request.body)} bytes")
        try:
            upload = branding.store_branding(state_dir(), kind, self.request.body)
        except branding.BrandingError as e:
            raise web.HTTPError(400, str(e))
        self.ctx.audit(self.username, f"upload-{kind}", "", "", "ok", upload.mime)
        self.write_json({"kind": kind, "mime": upload.mime})

    def delete(self, kind: str):
        if BRANDING_SCOPE not in self.scopes:
            raise web.HTTPError(403, f"Changing the {kind} needs the scope {BRANDING_SCOPE}")
        try:
            branding.reset_branding(state_dir(), kind)
        except branding.BrandingError as e:
            raise web.HTTPError(404, str(e))
        self.write_json({"kind": kind, "custom": False})


def handlers(prefix: str) -> list:
    return [(prefix + r"api/branding/(\w+)", BrandingHandler)]
