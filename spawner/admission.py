"""Admission control for class starts: at most `slots` servers start at once, the rest
wait in a first-come queue whose position they can see. A server's own start (and its
timeouts) begins only when it leaves the queue, so a burst of 100 students queues
instead of timing out together.

Rules that keep the slot count true (a leaked slot blocks every later start):
- a waiter that gives up (timeout, or its start cancelled) leaves the queue at once;
- release() hands a slot only to a waiter still waiting, skipping cancelled ones;
- a slot that arrives just as its waiter gives up is passed on, never kept.
Callers that run acquire() in a task of its own must cancel and await that task when
they are cancelled themselves, and release a slot it got (see GoldenSpawner._wait_for_slot)."""

from __future__ import annotations

import asyncio
from collections import deque


class QueueTimeout(Exception):
    pass


class Admission:
    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"concurrent starts must be at least 1, got {slots}")
        self.slots = slots
        self.active = 0
        self._waiting: deque[tuple[str, asyncio.Future]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def position(self, key: str) -> int | None:
        """1-based place in the queue, None when not waiting."""
        for i, (k, _) in enumerate(self._waiting):
            if k == key:
                return i + 1
        return None

    async def acquire(self, key: str, timeout: float) -> None:
        if self.active < self.slots and not self._waiting:
            self.active += 1
            return
        future = asyncio.get_running_loop().create_future()
        entry = (key, future)
        self._waiting.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as e:
            if entry in self._waiting:
                self._waiting.remove(entry)
            if future.done() and not future.cancelled():
                self.release()  # the slot arrived as we gave up: pass it on
            future.cancel()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise QueueTimeout(f"still queued after {timeout:.0f}s") from None

    def release(self) -> None:
        """Hand the slot to the first waiter still waiting, or free it."""
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(True)
                return
        self.active -= 1
