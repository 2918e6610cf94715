"""GET metrics: the platform's Prometheus metrics (hub_ext.usage.metrics), under
/services/goldenhub/metrics, beside the hub's own /hub/metrics (left as it is).

Rule for access, as JupyterHub guards its own metrics: a token (or login) holding the scope
METRICS_SCOPE (admins hold it through the goldenhub-admin role; a scraper gets a token with
it) — anything else, no token included, is a 403. With GOLDENHUB_METRICS_PUBLIC=1 (or
`metrics_public: true` in state/goldenhub.yaml) anyone may read them. The token needs no
other scope: access to the service is implied by the metrics scope here.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from tornado import web

from hub_ext import paths
from hub_ext.i18n import _
from hub_ext.service import authz
from hub_ext.service.base import APIHandler, BaseHandler
from hub_ext.usage import metrics

METRICS_SCOPE = authz.PREFIX + "metrics"


class MetricsHandler(APIHandler):
    def check_hub_user(self, model):
        return model  # any hub identity; the metrics scope is checked in prepare()

    async def prepare(self):
        if getattr(self.ctx, "metrics_public", False):
            return
        await BaseHandler.identify(self)
        if not authz.holds(self.scopes, METRICS_SCOPE):
            raise web.HTTPError(403, "%s", _(
                "Reading the metrics needs a JupyterHub token with the scope %(scope)s in the Authorization "
                "header (administrators hold it), unless the platform makes them public.", scope=METRICS_SCOPE))

    async def get(self):
        body = await asyncio.to_thread(metrics.scrape, self.ctx, paths.state_dir())
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


def handlers(prefix: str) -> list:
    return [(prefix + r"metrics", MetricsHandler)]
