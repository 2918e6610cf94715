"""Branding over the REST API: PUT the raw bytes of a logo or favicon; GET what is in use;
DELETE restores the shipped default. Content is sniffed (hub_ext.branding.store); a refused
upload changes nothing. Uploads and restores are audited (upload-<kind>, restore-<kind>),
from the API and from the admin page alike (restore_default is the one place for both).

Upload bodies are streamed and bounded (base.BoundedUpload).
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext.branding import store as branding
from hub_ext.i18n import N_, _
from hub_ext.paths import state_dir
from hub_ext.service.authz import Action
from hub_ext.service.base import APIHandler, BoundedUpload


class ImageUpload(BoundedUpload):
    """Logos and favicons: above every kind's own limit, so its message is the one seen."""

    max_upload = 2 * 2**20

    def too_big(self, size: int) -> str:
        return (f"The upload is {size / 2**20:.1f} MiB; an upload may be at most {self.max_upload // 2**20} MiB "
                f"(a logo at most {branding.MAX_BYTES['logo'] // 1024} KiB, a favicon at most "
                f"{branding.MAX_BYTES['favicon'] // 1024} KiB). Choose a smaller image.")


RESTORED = {"logo": N_("The goldenhub logo is back: the hub shows it now, and every JupyterLab started "
                        "from now on."),
            "favicon": N_("The goldenhub favicon is back: the hub shows it now, and every JupyterLab started "
                          "from now on.")}
ALREADY_DEFAULT = {"logo": N_("The logo already is the goldenhub logo; nothing was changed."),
                   "favicon": N_("The favicon already is the goldenhub favicon; nothing was changed.")}


async def restore_default(ctx, actor: str, kind: str) -> tuple[bool, str]:
    """Make the shipped default the current logo or favicon again, audited as
    restore-<kind>. Returns (changed, a sentence for the admin). Raises BrandingError for a
    kind that does not exist."""
    current = branding.describe(state_dir(), kind)
    if not current.custom:
        return False, _(ALREADY_DEFAULT[kind])
    await asyncio.to_thread(branding.reset_branding, state_dir(), kind)
    await asyncio.to_thread(ctx.audit, actor, f"restore-{kind}", "", "", "ok", current.mime)
    return True, _(RESTORED[kind])


@web.stream_request_body
class BrandingHandler(ImageUpload, APIHandler):
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
            changed, message = await restore_default(self.ctx, self.username, kind)
        except branding.BrandingError as e:
            raise web.HTTPError(404, str(e))
        self.write_json({"kind": kind, "custom": False, "changed": changed, "message": message})


def handlers(prefix: str) -> list:
    return [(prefix + r"api/branding/(\w+)", BrandingHandler)]
