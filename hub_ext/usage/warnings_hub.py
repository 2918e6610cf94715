"""GET /hub/goldenhub/notices in the hub process: the logged-in user's own warnings before a
stop (hub_ext.usage.warnings), for the hub's home page and for JupyterLab.

Why in the hub: both the hub's home page and a student's JupyterLab (/user/<name>/lab) are on
the hub's origin, and the hub's login cookie (Path=/hub/) goes with a same-origin request to
/hub/...: one endpoint serves both, with no login of its own, and JupyterLab needs no token.
The hub reads the service's database (as the spawner does: Settings.db_url).

Rules:
- Only the cookie's (or token's) own user, never a name from the request: nothing to forge.
- GET only and without effects, so the hub's XSRF check (which tornado skips for GET on page
  handlers) is not needed; the answer carries no CORS header, so another site cannot read it.
- Not logged in: 403 with a JSON sentence, never a login redirect (scripts poll this).
- The database read runs in a thread (never on the hub's event loop); a database the hub
  cannot read answers 503 with a sentence, and the log says why.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub.handlers import BaseHandler

from hub_ext.i18n import _
from hub_ext.service.db import shared_database
from hub_ext.usage import warnings

PATH = r"/goldenhub/notices"  # under the hub prefix: /hub/goldenhub/notices


def read_items(db_url: str, user: str) -> list[dict]:
    return warnings.items(shared_database(db_url), user)


class NoticesHandler(BaseHandler):
    """GET /hub/goldenhub/notices (see the module docstring)."""

    def initialize(self, db_url: str) -> None:
        self.db_url = db_url

    def _answer(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    async def get(self):
        user = self.current_user
        if user is None:
            return self._answer({"status": 403, "message": _("You are not logged in: log in to the hub to see "
                                                              "your warnings.")}, 403)
        try:
            found = await asyncio.to_thread(read_items, self.db_url, user.name)
        except Exception as e:
            self.log.error("goldenhub notices of %s could not be read from the goldenhub database: %s", user.name, e)
            return self._answer({"status": 503, "message": _("Your warnings cannot be read right now; try again "
                                                              "in a minute.")}, 503)
        self._answer(found)


def make_handlers(db_url: str) -> list[tuple]:
    """Entries for c.JupyterHub.extra_handlers (the hub adds its /hub/ prefix)."""
    return [(PATH, NoticesHandler, {"db_url": db_url})]


def update_warnings(c, s) -> None:
    """The hub's notices endpoint, reading the goldenhub database of these settings."""
    c.JupyterHub.extra_handlers.extend(make_handlers(s.db_url))
