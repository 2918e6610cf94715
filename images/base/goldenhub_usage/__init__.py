"""goldenhub's Jupyter server extension for resource use: GET <base_url>api/goldenhub/gpus
answers {"gpus": [...]} (goldenhub_usage.gpus) for the status bar item of the
@goldenhub/gpu-usage JupyterLab extension. jupyter-resource-usage reports CPU and memory;
this adds only the GPU a template was given. NVML is read in a thread, never on the loop."""

from __future__ import annotations

import asyncio
import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from goldenhub_usage.gpus import GpuReader

SETTING = "goldenhub_gpu_reader"


class GpuUsageHandler(APIHandler):
    @web.authenticated
    async def get(self):
        reader: GpuReader = self.settings[SETTING]
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(await asyncio.to_thread(reader.read)))


def _jupyter_server_extension_points():
    return [{"module": "goldenhub_usage"}]


def _load_jupyter_server_extension(server_app):
    web_app = server_app.web_app
    web_app.settings[SETTING] = GpuReader(os.environ)
    web_app.add_handlers(".*$", [(url_path_join(web_app.settings["base_url"], "api/goldenhub/gpus"), GpuUsageHandler)])
