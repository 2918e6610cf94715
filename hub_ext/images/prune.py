"""Removing old course images from this Docker host (`goldenhub images prune`).

Rules (decide, a pure function of plain data; the Docker part below only reads and removes):
- Only images of course repositories are looked at: an image with a tag or a repository
  digest in a repository whose last component is `course-<id>`, with or without a registry
  host ('goldenhub/course-x:3', '127.0.0.1:5000/goldenhub/course-x@sha256:..'). With a
  namespace given, only `<namespace>/course-<id>`. Every other image is never touched.
- An image also tagged in a repository that is not a course repository (or not in the
  namespace given) is kept: it is that repository's image too.
- An image is removed only when it is older than the age limit (by its Created time, strictly
  older) and it is NONE of:
  1. pinned now by a course (the version the course's templates start);
  2. referred to by a template of the merged catalog: its image, or the image its course file
     or the API declared before a pin replaced it (e.g. goldenhub/course-x:latest);
  3. used by a container, running or stopped (starting it again needs the image);
  4. one of the last K published versions of its course: the versions a rollback may need.
- Removal never forces: each of the image's tags and digests is removed as `docker rmi`
  without -f does, so Docker itself refuses an image that a container started since uses.
  A refusal is reported and the other images are still pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from hub_ext.i18n import _, ngettext
from hub_ext.i18n.format import size_text
from hub_ext.images.versions import image_repository

COURSE_PREFIX = "course-"
MAX_DAYS = 36500  # an age limit beyond a century is a typo

# Why an image is kept (Keep.kind)
PINNED, TEMPLATE, CONTAINER, RECENT_VERSION, NEWER, OTHER_REPOSITORY = (
    "pinned", "template", "container", "recent-version", "newer", "other-repository")


@dataclass(frozen=True)
class LocalImage:
    """An image on this Docker host as `docker images` lists it."""

    id: str  # sha256:...
    tags: tuple[str, ...]  # 'goldenhub/course-x:3'
    digests: tuple[str, ...]  # '127.0.0.1:5000/goldenhub/course-x@sha256:...'
    created: datetime  # aware, UTC
    size: int = 0  # bytes

    @property
    def references(self) -> tuple[str, ...]:
        return self.tags + self.digests

    @property
    def short_id(self) -> str:
        return self.id.split(":")[-1][:12]


@dataclass(frozen=True)
class Published:
    """A published version of a course's image (from the service database)."""

    course: str
    number: int
    image_id: str
    reference: str  # by digest


@dataclass(frozen=True)
class Container:
    """A container (any state) and the image id it was made from."""

    name: str
    image_id: str


@dataclass(frozen=True)
class Keep:
    """One reason to keep an image: `kind` (see the constants above), `text` the sentence."""

    kind: str
    text: str


@dataclass(frozen=True)
class Decision:
    image: LocalImage
    course: str  # the course whose repository the image is in
    age: timedelta
    reasons: tuple[Keep, ...]  # empty: remove it

    @property
    def remove(self) -> bool:
        return not self.reasons


def course_of(reference: str, namespace: str | None = None) -> str | None:
    """The course id of a course repository reference, else None:
    '127.0.0.1:5000/goldenhub/course-x@sha256:..' → 'x'; 'goldenhub/base:1' → None."""
    if not reference or reference.startswith("<none>"):
        return None
    repository = image_repository(reference)
    owner, _sep, last = repository.rpartition("/")
    if not last.startswith(COURSE_PREFIX) or len(last) == len(COURSE_PREFIX):
        return None
    if namespace is not None and owner != namespace:
        return None
    return last[len(COURSE_PREFIX):]


def _normal_tag(reference: str) -> str:
    """A tag reference with Docker's implied ':latest' written out."""
    last = reference.rsplit("/", 1)[-1]
    return reference if ":" in last else reference + ":latest"


def refers_to(reference: str, image: LocalImage) -> bool:
    """Whether an image reference (by tag, by digest or by id) names this local image."""
    if not reference:
        return False
    if reference == image.id:
        return True
    if "@" in reference:
        repository, digest = image_repository(reference), reference.split("@", 1)[1]
        return any(d == reference or (d.split("@", 1)[1] == digest and image_repository(d) == repository)
                   for d in image.digests if "@" in d)
    return _normal_tag(reference) in image.tags


def _age_days(age: timedelta) -> int:
    return max(0, age.days)


def decide(images: Iterable[LocalImage], *, containers: Iterable[Container], pins: dict[str, Published],
           published: Iterable[Published], template_images: Iterable[str], keep: int, older_than_days: int,
           now: datetime, namespace: str | None = None) -> list[Decision]:
    """What to do with each course image on the host (see the module's rules), oldest first."""
    containers = list(containers)
    template_images = sorted(set(template_images))
    newest: dict[str, list[Published]] = {}
    for version in sorted(published, key=lambda v: v.number, reverse=True):
        newest.setdefault(version.course, []).append(version)
    limit = timedelta(days=older_than_days)
    decisions = []
    for image in images:
        courses = [c for c in (course_of(r, namespace) for r in image.references) if c is not None]
        if not courses:
            continue
        reasons: list[Keep] = []
        others = [r for r in image.references if course_of(r, namespace) is None]
        if others:
            reasons.append(Keep(OTHER_REPOSITORY, _("also tagged %(references)s, not a course repository",
                                                    references=", ".join(others))))
        for course, version in sorted(pins.items()):
            if version.image_id == image.id or refers_to(version.reference, image):
                reasons.append(Keep(PINNED, _("pinned now by course %(course)s (version %(number)d)",
                                              course=course, number=version.number)))
        for reference in template_images:
            if refers_to(reference, image):
                reasons.append(Keep(TEMPLATE, _("a template refers to it (%(image)s)", image=reference)))
        for container in containers:
            if container.image_id == image.id:
                reasons.append(Keep(CONTAINER, _("used by container %(name)s", name=container.name)))
        for course in dict.fromkeys(courses):
            for version in newest.get(course, [])[:keep]:
                if version.image_id == image.id or refers_to(version.reference, image):
                    reasons.append(Keep(RECENT_VERSION, ngettext(
                        "version %(number)d of %(course)s, its newest published version (rollback may need it)",
                        "version %(number)d of %(course)s, one of its last %(num)d published versions "
                        "(rollback may need it)", keep, number=version.number, course=course)))
        age = now - image.created
        if age <= limit:
            reasons.append(Keep(NEWER, ngettext("not older than %(num)d day", "not older than %(num)d days",
                                                older_than_days)))
        decisions.append(Decision(image, courses[0], age, tuple(reasons)))
    return sorted(decisions, key=lambda d: (d.image.created, d.image.id))


def describe(decision: Decision) -> str:
    """'goldenhub/course-x:1 (3f2a..., 45 days old, 1.2 GiB)'."""
    image = decision.image
    names = ", ".join(image.tags or image.digests)
    age = ngettext("%(num)d day old", "%(num)d days old", _age_days(decision.age))
    return f"{names} ({image.short_id}, {age}, {size_text(image.size)})"


# --- the Docker side -------------------------------------------------------------------------

def _real(references) -> tuple[str, ...]:
    return tuple(r for r in references or () if r and not r.startswith("<none>"))


def read_images(api) -> list[LocalImage]:
    """Every image on the host (docker.APIClient.images)."""
    return [LocalImage(id=row["Id"], tags=_real(row.get("RepoTags")), digests=_real(row.get("RepoDigests")),
                       created=datetime.fromtimestamp(int(row.get("Created") or 0), timezone.utc),
                       size=int(row.get("Size") or 0))
            for row in api.images()]


def read_containers(api) -> list[Container]:
    """Every container, running or stopped, with its image id."""
    return [Container(name=(row.get("Names") or ["/" + row["Id"][:12]])[0].lstrip("/"), image_id=row.get("ImageID", ""))
            for row in api.containers(all=True)]


def read_published(db_url: str | None) -> tuple[dict[str, Published], list[Published]]:
    """(course → pinned version, every published version) from the service database; a
    database that does not exist yet, or has no publishing tables, has published nothing."""
    from pathlib import Path

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from hub_ext.images import versions
    from hub_ext.service.db import ImageVersion

    if not db_url or (db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).exists()):
        return {}, []
    engine = create_engine(db_url, future=True)
    try:
        with Session(engine) as session:
            if not versions.has_tables(session):
                return {}, []

            def plain(v) -> Published:
                return Published(v.course, v.number, v.image_id, v.reference)

            pins = {course: plain(v) for course, v in versions.current_pins(session).items()}
            published = [plain(v) for v in session.scalars(select(ImageVersion))]
            return pins, published
    finally:
        engine.dispose()


def template_images(catalog) -> set[str]:
    """Every image a template of the merged catalog refers to, disabled ones included, and the
    image each pinned template's file or API declared."""
    templates = [t for course in catalog.courses.values() for t in course.templates]
    templates += list(getattr(catalog, "disabled", {}).values())
    return {i for t in templates for i in (t.image, t.declared_image) if i}


def remove(api, image: LocalImage) -> str | None:
    """Remove the image by each of its references, never forced; None when it is gone, else
    the sentence saying why Docker kept it."""
    import docker

    for reference in image.references:
        try:
            api.remove_image(reference, force=False)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as e:
            return _("Docker refused to remove it: %(error)s", error=e.explanation or str(e))
    try:
        api.inspect_image(image.id)
    except docker.errors.NotFound:
        return None
    return _("untagged, but Docker keeps the image (other images are built on it)")


@dataclass
class Outcome:
    removed: list[Decision]
    refused: list[tuple[Decision, str]]
    kept: list[Decision]


def prune(api, decisions: list[Decision], dry_run: bool, log: Callable[[str], None] = print) -> Outcome:
    """Remove what the decisions say (nothing with dry_run), printing each image and its fate."""
    outcome = Outcome([], [], [])
    for decision in decisions:
        if not decision.remove:
            outcome.kept.append(decision)
            log(_("kept %(image)s: %(reasons)s", image=describe(decision),
                  reasons="; ".join(r.text for r in decision.reasons)))
            continue
        if dry_run:
            outcome.removed.append(decision)
            log(_("would remove %(image)s", image=describe(decision)))
            continue
        problem = remove(api, decision.image)
        if problem is None:
            outcome.removed.append(decision)
            log(_("removed %(image)s", image=describe(decision)))
        else:
            outcome.refused.append((decision, problem))
            log(_("not removed %(image)s: %(problem)s", image=describe(decision), problem=problem))
    return outcome
