"""Tornado handlers in the hub process that serve the current logo and favicon.

Public (the login page shows them), typed from the sniffed content, never sniffed again by
the browser, and revalidated on every load (ETag = sha256), so a new upload shows on the
next page load without a hub restart.
"""

from __future__ import annotations

from pathlib import Path

from jupyterhub.handlers import BaseHandler
from tornado import web

from hub_ext.branding.store import KINDS, describe

URL_PREFIX = "/goldenhub/branding"  # under the hub prefix: /hub/goldenhub/branding/<kind>


class BrandingHandler(BaseHandler):
    """GET/HEAD /hub/goldenhub/branding/(logo|favicon)."""

    def initialize(self, state_dir: str) -> None:
        self.state_dir = Path(state_dir)

    def compute_etag(self):
        return None  # set explicitly from the stored sha256

    async def get(self, kind: str, include_body: bool = True) -> None:
        if kind not in KINDS:
            raise web.HTTPError(404)
        current = describe(self.state_dir, kind)
        try:
            data = current.path.read_bytes() if include_body else b""
        except OSError:  # replaced between the look-up and the read: the next one is current
            current = describe(self.state_dir, kind)
            data = current.path.read_bytes() if include_body else b""
        self.set_header("Content-Type", current.mime)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")  # may be cached, must be revalidated
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Content-Disposition", f'inline; filename="{current.path.name}"')
        self.set_header("Etag", f'"{current.sha256}"')
        if self.check_etag_header():
            self.set_status(304)
            return
        if include_body:
            self.write(data)
        else:
            self.set_header("Content-Length", current.path.stat().st_size)

    async def head(self, kind: str) -> None:
        await self.get(kind, include_body=False)


def make_handlers(state_dir: Path | str) -> list[tuple]:
    """Entries for c.JupyterHub.extra_handlers (the hub adds its /hub/ prefix)."""
    return [(URL_PREFIX + r"/(logo|favicon)", BrandingHandler, {"state_dir": str(state_dir)})]


def template_versions(state_dir: Path | str):
    """A c.JupyterHub.template_vars callable: short content hashes and the favicon's type,
    so the pages' <img>/<link> URLs change when the image does (favicons are cached hard)."""

    def versions(user=None) -> dict:
        logo, favicon = describe(state_dir, "logo"), describe(state_dir, "favicon")
        return {"logo": logo.sha256[:16], "favicon": favicon.sha256[:16], "favicon_type": favicon.mime}

    return versions
