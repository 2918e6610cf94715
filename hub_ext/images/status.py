"""Whether a course's images hold the framework the course asks for, read from their labels.

`goldenhub images build` labels every image with the framework it was built on
(contract.LABEL_IMAGE_FRAMEWORK) and, when it had to build on another one because the
asked-for framework needs a CUDA base this machine lacks, the framework the course asked for
(contract.LABEL_IMAGE_FRAMEWORK_REQUESTED). The rules, in the order they are applied:

- no image on this host                          -> missing   (degraded)
- the course names no framework                  -> unknown   (nothing to compare)
- no goldenhub framework label, or one that is
  not a framework name goldenhub writes          -> unknown   (e.g. a registry image: fine)
- the image's framework is the course's          -> ok
- otherwise                                      -> substituted (degraded): students will not
  find the course's framework. When the image itself records that the course's framework
  was asked for, it was built on a machine without the CUDA base; otherwise the course file
  changed its framework after the build.

make_image_status is a pure function of a course's framework, an image name and that image's
labels; the callers read the labels (the CLI, the admin page in a thread, the spawner off its
event loop through LabelCache).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from hub_ext import contract
from hub_ext.i18n import _

OK, SUBSTITUTED, MISSING, UNKNOWN = "ok", "substituted", "missing", "unknown"
DEGRADED = (SUBSTITUTED, MISSING)
# What `goldenhub images build` writes as a framework: a directory name under images/frameworks.
_FRAMEWORK = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# How people spell a framework, and the module a student would import from it.
DISPLAY_NAMES = {"pytorch": "PyTorch", "scipy": "SciPy", "tensorflow": "TensorFlow", "jax": "JAX"}
MODULES = {"pytorch": "torch", "scikit-learn": "sklearn"}


@dataclass(frozen=True)
class ImageStatus:
    """What one template's image holds, compared with what its course asks for."""

    state: str  # OK | SUBSTITUTED | MISSING | UNKNOWN
    course: str
    template: str
    image: str
    asked: str | None  # the course's framework (None: the course names none)
    built: str | None  # the framework the image's labels name (None: missing or not labelled)
    needs_cuda_base: bool = False  # substituted at build time for want of the CUDA base

    @property
    def degraded(self) -> bool:
        return self.state in DEGRADED

    @property
    def sentence(self) -> str:
        """For admins and instructors: what is wrong and what to do."""
        if self.state == OK:
            return _("ok: built on %(built)s", built=self.built)
        if self.state == MISSING:
            return _("image %(image)s is not on this server: students cannot start it; build it with goldenhub "
                     "images build --course %(course)s", image=self.image, course=self.course)
        if self.state == UNKNOWN:
            if self.asked is None:
                return _("not checked: the course file names no framework")
            return _("not checked: the image was not built by goldenhub (it has no framework label)")
        values = {"built": self.built, "asked": self.asked, "module": module_name(self.asked), "course": self.course}
        if self.needs_cuda_base:
            return _("built on %(built)s instead of %(asked)s: students will not find %(module)s; build on a machine "
                     "with the CUDA base image (goldenhub images build --course %(course)s)", **values)
        return _("built on %(built)s instead of %(asked)s: students will not find %(module)s; the course's framework "
                 "changed since the build: goldenhub images build --course %(course)s", **values)

    @property
    def student_note(self) -> str:
        """For the picker: only a missing framework is the student's business (a missing image
        is refused with its own sentence when they start it)."""
        if self.state != SUBSTITUTED:
            return ""
        return _("This environment was built without %(framework)s on this server; your instructor knows.",
                 framework=display_name(self.asked))


def display_name(framework: str | None) -> str:
    return DISPLAY_NAMES.get(framework or "", framework or "")


def module_name(framework: str | None) -> str:
    return MODULES.get(framework or "", framework or "")


def _framework_label(labels: dict, name: str) -> str | None:
    value = labels.get(name)
    if not isinstance(value, str) or value == "none" or not _FRAMEWORK.fullmatch(value):
        return None
    return value


def make_image_status(course: str, template: str, framework: str | None, image: str,
                      labels: dict | None) -> ImageStatus:
    """The status of one template's image; `labels` None means the image is not on this host."""
    def status(state: str, built: str | None = None, cuda: bool = False) -> ImageStatus:
        return ImageStatus(state, course, template, image, framework, built, cuda)

    if labels is None:
        return status(MISSING)
    built = _framework_label(labels, contract.LABEL_IMAGE_FRAMEWORK)
    if framework is None or built is None:
        return status(UNKNOWN, built)
    if built == framework:
        return status(OK, built)
    requested = _framework_label(labels, contract.LABEL_IMAGE_FRAMEWORK_REQUESTED)
    return status(SUBSTITUTED, built, requested == framework)


def check_courses(courses: Iterable, labels_of: Callable[[str], dict | None]) -> list[ImageStatus]:
    """One status per template of each course (catalog Course objects), each image read once.
    `labels_of(image)` returns the labels, or None when the image is not on this host."""
    seen: dict[str, dict | None] = {}
    result = []
    for course in courses:
        for t in course.templates:
            if t.image not in seen:
                seen[t.image] = labels_of(t.image)
            result.append(make_image_status(course.id, t.id, course.framework, t.image, seen[t.image]))
    return result


def labels_from_inspect(inspected: dict) -> dict:
    """The labels of a Docker image inspection (`docker image inspect`'s object)."""
    return (inspected.get("Config") or {}).get("Labels") or {}


def read_labels(api, image: str) -> dict | None:
    """Blocking: the labels of `image` through a docker.APIClient, None when it is not here.
    Other engine errors are raised: the caller decides what an unreachable engine means."""
    import docker.errors

    try:
        return labels_from_inspect(api.inspect_image(image))
    except docker.errors.NotFound:
        return None


class LabelCache:
    """Image labels kept for `ttl_s` seconds, so a class opening the picker at once asks Docker
    once per image, not once per student; at most `size` images (the oldest goes first).
    A failed read is not kept. The clock is injectable for tests."""

    def __init__(self, ttl_s: float = 30.0, size: int = 256, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.size, self.clock = ttl_s, size, clock
        self._entries: dict[str, tuple[float, dict | None]] = {}

    async def get(self, image: str, read: Callable[[str], Awaitable[dict | None]]) -> dict | None:
        entry = self._entries.get(image)
        if entry is not None and self.clock() - entry[0] < self.ttl_s:
            return entry[1]
        labels = await read(image)
        self._entries.pop(image, None)
        while len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[image] = (self.clock(), labels)
        return labels

    def clear(self) -> None:
        self._entries.clear()
