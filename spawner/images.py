"""Getting a course image onto the host before a start, with the pull's progress in percent.

Rule: only a reference that names its registry host is ever pulled. An unqualified name
such as 'goldenhub/course-x:1' means Docker Hub to Docker, a public namespace nobody here
controls; such an image must already be on the host (built by `goldenhub images build`),
and a start that finds it missing is refused with a sentence, never pulled."""

from __future__ import annotations

import asyncio
import time

import docker

from spawner.progress import ProgressLog, pull_percent


class ImageUnavailable(Exception):
    """The image is missing and may not be pulled; the message is for the student."""


def names_registry(image: str) -> bool:
    """Whether `image` names its registry host, Docker's rule: a first path component
    with '.', ':' or an upper-case letter, or 'localhost' ('reg.example.org/a',
    '127.0.0.1:5000/a', 'localhost/a'). 'goldenhub/a' and 'ubuntu:22.04' do not: Docker
    would take them from Docker Hub."""
    if "/" not in image:
        return False
    first = image.split("/", 1)[0]
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def split_reference(image: str) -> tuple[str, str | None]:
    """'reg:5000/a/b:tag' → ('reg:5000/a/b', 'tag'); a missing tag means latest;
    a digest reference is pulled whole (tag None)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return image, None
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


async def pull_with_progress(spawner, image: str, progress: ProgressLog) -> None:
    """Pull `image` unless present (pull_policy 'ifnotpresent'; 'always' pulls anyway,
    'never'/'skip' never pull), reporting overall percent at most once a second.
    An image that does not name its registry is never pulled (ImageUnavailable if missing)."""
    policy = spawner.pull_policy.lower()
    qualified = names_registry(image)
    if policy != "always" or not qualified:
        try:
            await spawner.docker("inspect_image", image)
            return
        except docker.errors.ImageNotFound:
            if not qualified:
                raise ImageUnavailable(
                    f"The course image {image} is not available on this server; "
                    "an administrator must build it with goldenhub images build.") from None
            if policy in ("never", "skip"):
                raise
    loop = asyncio.get_running_loop()
    progress.emit(f"Pulling image {image}", 12)

    def pull() -> None:
        repo, tag = split_reference(image)
        layers: dict[str, tuple[int, int]] = {}
        last = 0.0
        for chunk in spawner.client.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            detail = chunk.get("progressDetail") or {}
            if chunk.get("id") and detail.get("total"):
                layers[chunk["id"]] = (detail.get("current", 0), detail["total"])
            elif chunk.get("id") and chunk.get("status") in ("Download complete", "Pull complete") \
                    and chunk["id"] in layers:
                total = layers[chunk["id"]][1]
                layers[chunk["id"]] = (total, total)
            if time.monotonic() - last > 1 and layers:
                last = time.monotonic()
                percent = pull_percent(layers)
                # 12% → 50% of the start's progress bar is the pull
                loop.call_soon_threadsafe(progress.emit, f"Pulling image {image}: {percent}%", 12 + percent * 38 // 100)

    await asyncio.wait_for(loop.run_in_executor(spawner.executor, pull), timeout=1800)
    progress.emit(f"Pulled image {image}: 100%", 50)
