"""Progress events of one start, and Docker pull progress as a percentage.

Language rule: start() emits a message either already translated (`_()` in the language of
the request that started the server) or as a catalog msgid (STEPS); stream() translates
each message in the language of the page that watches the progress (the hub sets it per
request, hub_ext.i18n.hub), so a msgid is shown in the watcher's language and a translated
sentence stays as it is.
"""

from __future__ import annotations

import asyncio

from hub_ext.i18n import N_, translate

# The steps of every start (spawner/golden.py emits them as they are).
STEPS = (N_("Starting your environment"), N_("Container started"), N_("Jupyter server is up"))


class ProgressLog:
    """Events appended by start(), streamed by progress() to the student's page."""

    def __init__(self):
        self.events: list[dict] = []
        self.finished = False
        self._changed = asyncio.Event()

    def emit(self, message: str, progress: int | None = None, **extra) -> None:
        event = {"message": message, **extra}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        self._changed.set()

    def finish(self) -> None:
        self.finished = True
        self._changed.set()

    async def stream(self):
        sent = 0
        while True:
            while sent < len(self.events):
                event = self.events[sent]
                yield {**event, "message": translate(event["message"])}
                sent += 1
            if self.finished:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 5)
            except asyncio.TimeoutError:
                pass


def pull_percent(layers: dict[str, tuple[int, int]]) -> int:
    """Overall percent from Docker's per-layer (current, total) download progress."""
    total = sum(t for _, t in layers.values())
    if not total:
        return 0
    return min(100, int(100 * sum(min(c, t) for c, t in layers.values()) / total))
