"""The platform's logo, favicon and language inside a student's JupyterLab, without
rebuilding images.

When a container has been created and before it starts, a small archive is copied into
/tmp/goldenhub-branding (the only step that touches Docker, `install_branding`):

    config/jupyter_server_config.json   found through $JUPYTER_CONFIG_PATH (see make_branding_env)
    custom/custom.css                   LabApp.custom_css: the logo, embedded as a data: URL
    static/favicon.ico, static/favicons/*.ico
                                        ServerApp.extra_static_paths: shadows jupyter_server's favicons
    lab/overrides.json                  JupyterLab's default interface language (see below)

Rules: the student's own ~/.jupyter stays the config dir (their settings, workspaces and
config are untouched; their own config can override ours for their own server only);
a copy that fails is logged and never stops a start (the stock logo shows instead).

The logo takes exactly the box of JupyterLab's own logo: the stock icon (an <svg> of 16 px
by ~21 px inside the 33x27 px #jp-MainLogo) keeps its size and position, its drawing is
hidden, and the upload is painted as its background, scaled to fit (aspect kept, centred).

The language: the framework images link
{sys.prefix}/share/jupyter/lab/settings/overrides.d/goldenhub-language.json to
lab/overrides.json here (images/frameworks/*/Dockerfile, with the zh-CN language pack).
jupyterlab_server reads it at start as the *default* of the translation extension's
`locale` setting: the platform language of the start request (hub_ext.i18n.current(), set
per hub request) becomes JupyterLab's language, while a language the student picks in
JupyterLab (Settings > Language, a user setting in their home) still wins. Nothing is
written into the student's home. Images without the link keep JupyterLab's own default.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import tarfile
import time
from pathlib import Path

from hub_ext import i18n
from hub_ext.branding.store import PNG_SIGNATURE, describe

CONTAINER_DIR = "/tmp/goldenhub-branding"
# jupyter_server's static/favicons, which JupyterLab (idle, busy-1), Notebook 7 and
# nbclassic (busy-2/3, file, notebook, terminal) link to; plus the root favicon.ico.
FAVICON_NAMES = ("favicon.ico", "favicon-busy-1.ico", "favicon-busy-2.ico", "favicon-busy-3.ico",
                 "favicon-file.ico", "favicon-notebook.ico", "favicon-terminal.ico")

CUSTOM_CSS = """/* goldenhub branding: the platform logo in JupyterLab's top-left corner. */
/* The stock icon's box stays (its size and margins are JupyterLab's); only its drawing goes. */
#jp-MainLogo > svg {{
  background-image: url("data:{mime};base64,{data}");
  background-repeat: no-repeat;
  background-position: center;
  background-size: contain;
}}
#jp-MainLogo > svg > * {{
  visibility: hidden;
}}
"""
# The translation extension's settings id, and JupyterLab's locale for each platform language
# (the language packs' entry-point names).
LAB_TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"
LAB_LOCALES = {"en": "en", "zh_CN": "zh_CN"}


def make_server_config(container_dir: str = CONTAINER_DIR) -> dict:
    """jupyter_server/JupyterLab configuration pointing at the copied files."""
    return {
        "ServerApp": {
            "extra_static_paths": [f"{container_dir}/static"],
            # static_custom_path is not configurable by itself; the setting is.
            "tornado_settings": {"static_custom_path": [f"{container_dir}/custom"]},
        },
        "LabApp": {"custom_css": True},
    }


def make_branding_env(env: dict[str, str], container_dir: str = CONTAINER_DIR) -> dict[str, str]:
    """Environment additions: our config directory first on JUPYTER_CONFIG_PATH (any
    existing entries kept). JUPYTER_CONFIG_DIR is left alone on purpose."""
    existing = env.get("JUPYTER_CONFIG_PATH", "")
    return {"JUPYTER_CONFIG_PATH": ":".join(p for p in (f"{container_dir}/config", existing) if p)}


def make_lab_overrides(language: str) -> dict:
    """JupyterLab settings defaults for a platform language (unknown: the source language)."""
    return {LAB_TRANSLATION_PLUGIN: {"locale": LAB_LOCALES.get(i18n.normalize(language) or i18n.SOURCE, "en")}}


def make_custom_css(logo: bytes, mime: str) -> str:
    return CUSTOM_CSS.format(mime=mime, data=base64.b64encode(logo).decode("ascii"))


def as_ico(data: bytes) -> bytes:
    """An ICO file as is; a PNG wrapped into a one-image ICO (PNG-in-ICO, as browsers
    read it), so files named *.ico hold what their name says."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    width, height = struct.unpack(">II", data[16:24])
    entry = struct.pack("<BBBBHHII", width if width < 256 else 0, height if height < 256 else 0,
                        0, 0, 1, 32, len(data), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + data


def make_branding_archive(state_dir: Path | str, container_dir: str = CONTAINER_DIR,
                          language: str = i18n.SOURCE) -> bytes:
    """A tar to extract in the container's parent of container_dir (read-only files)."""
    logo, favicon = describe(state_dir, "logo"), describe(state_dir, "favicon")
    favicon_ico = as_ico(favicon.path.read_bytes())
    top = Path(container_dir).name
    files = {
        "config/jupyter_server_config.json": json.dumps(make_server_config(container_dir), indent=1).encode(),
        "custom/custom.css": make_custom_css(logo.path.read_bytes(), logo.mime).encode(),
        "static/favicon.ico": favicon_ico,
        **{f"static/favicons/{name}": favicon_ico for name in FAVICON_NAMES},
        "lab/overrides.json": json.dumps(make_lab_overrides(language), indent=1).encode(),
    }
    buf, now = io.BytesIO(), time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in (top, f"{top}/config", f"{top}/custom", f"{top}/static", f"{top}/static/favicons", f"{top}/lab"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def install_branding(spawner, state_dir: Path | str, container_dir: str = CONTAINER_DIR,
                           language: str | None = None) -> bool:
    """Copy the current branding into the spawner's created (not yet started) container,
    with JupyterLab's language: `language`, else that of the request that started it.
    Returns False, after logging why, when it could not; the start goes on."""
    language = language or i18n.current()
    try:
        archive = await asyncio.to_thread(make_branding_archive, state_dir, container_dir, language)
        await spawner.docker("put_archive", spawner.container_id, str(Path(container_dir).parent), archive)
        return True
    except Exception as e:
        spawner.log.warning("Branding not copied into the container of %s (stock logo shown): %s",
                            spawner._log_name, e)
        return False
