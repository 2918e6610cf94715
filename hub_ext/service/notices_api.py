"""GET api/notices/me: the logged-in student's own warnings before a stop (idle cull, GPU-hour
quota), in the request's language (hub_ext.usage.warnings). The student page shows the same
items and its script (static/notices.js) polls this endpoint to keep them current."""

from __future__ import annotations

import asyncio

from hub_ext.service.base import APIHandler
from hub_ext.usage import warnings


class MyNoticesHandler(APIHandler):
    async def get(self):
        found = await asyncio.to_thread(warnings.items, self.ctx.db, self.username)
        self.set_header("Cache-Control", "no-store")  # a warning comes and goes within minutes
        self.write_json(found)


def handlers(prefix: str) -> list:
    return [(prefix + r"api/notices/me", MyNoticesHandler)]
