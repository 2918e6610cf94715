"""The student's warnings inside JupyterLab, without rebuilding images: a JupyterLab 4
extension (labextension/remoteEntry.js, prebuilt by hand: see its header) copied into each
container before it starts, like the branding (hub_ext.branding.container).

Layout in the container (root-owned, read-only for the student):

    /tmp/goldenhub-lab/labextensions/@goldenhub/notices/package.json
    /tmp/goldenhub-lab/labextensions/@goldenhub/notices/static/remoteEntry.<hash>.js

and /tmp/goldenhub-lab first on JUPYTER_PATH (make_lab_env), where jupyterlab_server looks for
federated extensions (jupyter_path("labextensions")). The file name carries a hash of its
content, so a browser never runs a stale copy after an upgrade.

Rules: nothing is written into the student's home; a copy that fails is logged and never stops
a start (the warnings still show on the hub's home page and the environments page).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

CONTAINER_DIR = "/tmp/goldenhub-lab"
NAME = "@goldenhub/notices"
VERSION = "1.0.0"
SOURCE = Path(__file__).with_name("labextension") / "remoteEntry.js"


def make_package_json(load: str) -> dict:
    """What jupyterlab_server reads to list a federated extension (get_federated_extensions)."""
    return {
        "name": NAME,
        "version": VERSION,
        "description": "goldenhub: warnings before your server is stopped (idle, GPU-hour quota).",
        "jupyterlab": {"extension": True, "_build": {"load": load, "extension": "./extension"}},
    }


def make_lab_env(env: dict[str, str], container_dir: str = CONTAINER_DIR) -> dict[str, str]:
    """Environment additions: our data directory first on JUPYTER_PATH (existing entries kept)."""
    existing = env.get("JUPYTER_PATH", "")
    return {"JUPYTER_PATH": ":".join(p for p in (container_dir, existing) if p)}


def make_lab_archive(container_dir: str = CONTAINER_DIR) -> bytes:
    """A tar to extract in the parent of container_dir."""
    script = SOURCE.read_bytes()
    load = f"static/remoteEntry.{hashlib.sha256(script).hexdigest()[:16]}.js"
    top = Path(container_dir).name
    ext = f"{top}/labextensions/{NAME}"
    files = {f"{ext}/package.json": json.dumps(make_package_json(load), indent=1).encode(), f"{ext}/{load}": script}
    buf, now = io.BytesIO(), time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in (top, f"{top}/labextensions", f"{top}/labextensions/@goldenhub", ext, f"{ext}/static"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def install_lab_warnings(spawner, container_dir: str = CONTAINER_DIR) -> bool:
    """Copy the extension into the spawner's created (not yet started) container. Returns
    False, after logging why, when it could not; the start goes on."""
    try:
        archive = await asyncio.to_thread(make_lab_archive, container_dir)
        await spawner.docker("put_archive", spawner.container_id, str(Path(container_dir).parent), archive)
        return True
    except Exception as e:
        spawner.log.warning("JupyterLab warnings extension not copied into the container of %s (warnings show "
                            "on the hub's pages only): %s", spawner._log_name, e)
        return False
