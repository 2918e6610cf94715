"""Published versions of course images, the pin each course's templates follow, and publish
runs with their one-per-course lock: the database side of publishing, shared by the command
line, the service's pages and API, and the catalog (which applies pins to templates).

Rules:
- A version is recorded only after its image was built, smoke-tested and pushed; its
  `reference` names the image by digest, so a pin never moves when a tag does.
- A course's pin is its newest PinRevision. Publishing and rolling back each add a revision
  (who, when, which version); nothing is rewritten, so the history is the audit.
- A pin applies to every template of the course whose image is the course's own image
  (repository ending in `course-<course id>`), whether the template comes from a course file
  or from the database: the pin wins over the file's tag, and the template keeps the file's
  image in `declared_image` so pages can show both.
- One publish per course at a time: the run holds the course's PublishLock row. A lock whose
  holder process is gone (same host), or that is older than MAX_RUN_S, is taken over and its
  run marked failed; a live one refuses the second publish with a sentence naming the first.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from datetime import timedelta
from typing import Iterable

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub_ext.i18n import _
from hub_ext.service.db import ImageVersion, PinRevision, PublishLock, PublishRun, as_utc, utcnow

MAX_RUN_S = 3 * 3600  # no publish takes longer; a lock this old is stale whoever holds it
STEPS = ("build", "smoke", "push", "pin", "prepull")
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


class VersionError(ValueError):
    """A refused pin or rollback: `status` is the HTTP status, str() says what to do."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


class PublishBusy(Exception):
    """Another publish of the course is running; str() names it; `run` is its row."""

    def __init__(self, run: PublishRun):
        self.run = run
        super().__init__(_("A publish of %(course)s is already running: publish %(id)d, started by %(actor)s at "
                           "%(at)s. Wait for it to finish, then publish again.", course=run.course, id=run.id,
                           actor=run.actor, at=f"{as_utc(run.started_at):%Y-%m-%d %H:%M} UTC"))


# --- which templates a pin applies to ------------------------------------------------------

def image_repository(image: str) -> str:
    """The repository of an image reference without its registry host, tag or digest:
    '127.0.0.1:5000/goldenhub/course-x@sha256:..' and 'goldenhub/course-x:1' → 'goldenhub/course-x'."""
    from spawner.images import names_registry

    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if names_registry(name):
        name = name.split("/", 1)[1]
    return name


def is_course_image(image: str, course: str) -> bool:
    """Whether `image` is course `course`'s own image (what a publish of the course replaces)."""
    return image_repository(image).rsplit("/", 1)[-1] == f"course-{course}"


def apply_pins(courses: dict, pins: dict[str, ImageVersion]) -> dict:
    """The courses with every pinned course's own-image templates on the pinned version
    (Template.image by digest, pinned_version, declared_image the file's or API's image)."""
    out = dict(courses)
    for cid, version in pins.items():
        course = out.get(cid)
        if course is None:
            continue
        templates = tuple(
            replace(t, image=version.reference, pinned_version=version.number, declared_image=t.image)
            if is_course_image(t.image, cid) else t
            for t in course.templates)
        out[cid] = replace(course, templates=templates)
    return out


def has_tables(session: Session) -> bool:
    """Whether the database has the publishing tables (an older schema: no pins yet)."""
    return inspect(session.get_bind()).has_table("pin_revisions")


# --- versions and pins ---------------------------------------------------------------------

def record_version(session: Session, course: str, *, reference: str, image_id: str, actor: str, tag: str = "",
                   commit: str = "", ref: str = "", requirements_digest: str = "", labels: dict | None = None,
                   publish_id: int | None = None) -> ImageVersion:
    """A new published version of the course (numbered after the last); not yet pinned."""
    number = (session.scalar(select(func.max(ImageVersion.number)).where(ImageVersion.course == course)) or 0) + 1
    version = ImageVersion(course=course, number=number, reference=reference, tag=tag, image_id=image_id,
                           commit=commit, ref=ref, requirements_digest=requirements_digest,
                           labels=json.dumps(labels or {}, sort_keys=True), published_by=actor, at=utcnow(),
                           publish_id=publish_id)
    session.add(version)
    session.flush()
    return version


def pin(session: Session, course: str, version: ImageVersion, action: str, author: str) -> PinRevision:
    """Make `version` the course's pin from now on (a new revision)."""
    if version.course != course:
        raise VersionError(400, f"version {version.number} belongs to {version.course}, not {course}")
    number = (session.scalar(select(func.max(PinRevision.number)).where(PinRevision.course == course)) or 0) + 1
    revision = PinRevision(course=course, number=number, version_id=version.id, action=action, author=author,
                           at=utcnow())
    session.add(revision)
    session.flush()
    return revision


def versions(session: Session, course: str) -> list[ImageVersion]:
    """The course's published versions, newest first."""
    return list(session.scalars(select(ImageVersion).where(ImageVersion.course == course)
                                .order_by(ImageVersion.number.desc())))


def version(session: Session, course: str, number: object) -> ImageVersion:
    """Version `number` of the course; a clear VersionError (404) naming those that exist."""
    found = None
    if isinstance(number, int) or (isinstance(number, str) and number.isdigit() and len(number) < 10):
        found = session.scalar(select(ImageVersion).where(ImageVersion.course == course,
                                                          ImageVersion.number == int(number)))
    if found is None:
        have = [str(v.number) for v in versions(session, course)]
        raise VersionError(404, _("%(course)s has no published version %(number)s; published versions: %(have)s",
                                  course=course, number=str(number)[:40], have=", ".join(have) or _("none yet")))
    return found


def pin_history(session: Session, course: str) -> list[PinRevision]:
    """The course's pin revisions, newest first."""
    return list(session.scalars(select(PinRevision).where(PinRevision.course == course)
                                .order_by(PinRevision.number.desc())))


def current_pins(session: Session, courses: Iterable[str] | None = None) -> dict[str, ImageVersion]:
    """course → the version its templates use now (only courses that were ever published)."""
    newest = (select(PinRevision.course, func.max(PinRevision.number).label("number"))
              .group_by(PinRevision.course).subquery())
    rows = session.execute(
        select(PinRevision.course, ImageVersion)
        .join(newest, (PinRevision.course == newest.c.course) & (PinRevision.number == newest.c.number))
        .join(ImageVersion, ImageVersion.id == PinRevision.version_id))
    pins = {course: v for course, v in rows}
    if courses is not None:
        wanted = set(courses)
        pins = {c: v for c, v in pins.items() if c in wanted}
    return pins


def rollback(session: Session, course: str, number: object, author: str) -> PinRevision:
    """Pin an earlier published version again (a new revision, action rollback)."""
    target = version(session, course, number)
    current = current_pins(session, [course]).get(course)
    if current is not None and current.id == target.id:
        raise VersionError(409, _("%(course)s already uses version %(number)d; nothing changed",
                                  course=course, number=target.number))
    return pin(session, course, target, "rollback", author)


# --- publish runs and the lock -------------------------------------------------------------

def this_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_alive(holder: str) -> bool:
    host, _sep, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's process: only its age can tell (MAX_RUN_S)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def begin_run(factory: sessionmaker, course: str, ref: str, actor: str, holder: str | None = None) -> PublishRun:
    """A new running publish of the course holding its lock; PublishBusy if a live one holds it.
    A stale lock (holder gone, or older than MAX_RUN_S) is taken over and its run marked failed."""
    holder = holder or this_holder()
    for _attempt in range(3):
        with factory() as session:
            lock = session.get(PublishLock, course)
            if lock is not None:
                run = session.get(PublishRun, lock.run_id)
                stale = (run is None or run.state != RUNNING or not _holder_alive(lock.holder)
                         or utcnow() - as_utc(lock.at) > timedelta(seconds=MAX_RUN_S))
                if not stale:
                    raise PublishBusy(run)
                if run is not None and run.state == RUNNING:
                    run.state, run.finished_at = FAILED, utcnow()
                    run.message = run.message or "the process doing this publish ended without finishing it"
                session.delete(lock)
                session.flush()
            run = PublishRun(course=course, ref=ref, actor=actor, state=RUNNING, step="", holder=holder,
                             started_at=utcnow())
            session.add(run)
            session.flush()
            session.add(PublishLock(course=course, run_id=run.id, holder=holder, at=utcnow()))
            try:
                session.commit()
            except IntegrityError:  # another process took the lock between our read and write
                session.rollback()
                continue
            return run
    with factory() as session:
        lock = session.get(PublishLock, course)
        run = lock and session.get(PublishRun, lock.run_id)
        if run is not None:
            raise PublishBusy(run)
    raise RuntimeError(f"could not take the publish lock of {course}")


def adopt_run(factory: sessionmaker, run_id: int, holder: str | None = None) -> PublishRun:
    """The process that does a run begun elsewhere (the service starts it, the CLI does it)
    becomes its holder, so a crash of that process frees the lock."""
    holder = holder or this_holder()
    with factory() as session:
        run = session.get(PublishRun, run_id)
        if run is None or run.state != RUNNING:
            raise VersionError(409, f"publish {run_id} is not running")
        run.holder = holder
        lock = session.get(PublishLock, run.course)
        if lock is None or lock.run_id != run_id:
            raise VersionError(409, f"publish {run_id} does not hold the lock of {run.course}")
        lock.holder = holder
        session.commit()
        return run


def set_step(factory: sessionmaker, run_id: int, step: str, log_path: str | None = None) -> None:
    if step not in STEPS:
        raise ValueError(f"unknown publish step {step!r}")
    with factory() as session:
        run = session.get(PublishRun, run_id)
        run.step = step
        if log_path is not None:
            run.log_path = log_path
        session.commit()


def finish_run(factory: sessionmaker, run_id: int, ok: bool, message: str = "",
               version_id: int | None = None) -> PublishRun:
    """Close the run (succeeded or failed, with its sentence) and release the course's lock."""
    with factory() as session:
        run = session.get(PublishRun, run_id)
        run.state = SUCCEEDED if ok else FAILED
        run.message = message
        run.finished_at = utcnow()
        if version_id is not None:
            run.version_id = version_id
        lock = session.get(PublishLock, run.course)
        if lock is not None and lock.run_id == run_id:
            session.delete(lock)
        session.commit()
        return run


def runs(session: Session, course: str, limit: int = 20) -> list[PublishRun]:
    """The course's publish runs, newest first."""
    return list(session.scalars(select(PublishRun).where(PublishRun.course == course)
                                .order_by(PublishRun.id.desc()).limit(limit)))
