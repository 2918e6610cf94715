"""`python -m hub_ext.ssh`: the SSH service the hub starts (hub_ext.ssh.config.update_ssh)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from hub_ext import i18n
from hub_ext.service import process
from hub_ext.ssh.server import serve


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s goldenhub-ssh] %(message)s")
    i18n.set_default(os.environ.get("GOLDENHUB_LANGUAGE") or "en")
    host = os.environ.get("GOLDENHUB_SSH_HOST", "0.0.0.0")
    port = int(os.environ.get("GOLDENHUB_SSH_PORT", "8022"))
    state_dir = Path(os.environ.get("GOLDENHUB_STATE_DIR", "state"))
    await serve(host, port, state_dir)
    log = logging.getLogger("goldenhub.ssh")
    log.info("SSH and SFTP on %s:%d", host, port)
    # The hub stops its services with a signal: end quietly, not with a traceback in its log.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A hub killed before its cleanup cannot stop us: we end when it is gone (as the goldenhub
    # service does), so no orphan keeps the SSH port from the next hub.
    hub = os.getppid()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=2)
        except asyncio.TimeoutError:
            if process.hub_is_gone(hub):
                log.warning("the hub (pid %d) is gone; SSH service stopping", hub)
                break
    log.info("SSH service stopping")


if __name__ == "__main__":
    asyncio.run(main())
