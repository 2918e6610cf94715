"""The admin page's "Restore default" buttons for the logo and the favicon.

The form is POSTed after the page's dialog (data-confirm, confirm.js) was answered; the
work and the audit entry are branding_api.restore_default's, the same as the API's DELETE.
"""

from __future__ import annotations

from tornado import web

from hub_ext.service.admin_pages import AdminHandler
from hub_ext.service.authz import Action
from hub_ext.service.branding_api import restore_default


class BrandingRestorePage(AdminHandler):
    """POST admin/branding/(logo|favicon)/restore: back to the goldenhub default."""

    @web.authenticated
    async def post(self, kind: str):
        self.require(Action.BRANDING)
        _changed, message = await restore_default(self.ctx, self.username, kind)
        self.back(message, "#branding")


def handlers(prefix: str) -> list:
    return [(prefix + r"admin/branding/(logo|favicon)/restore", BrandingRestorePage)]
