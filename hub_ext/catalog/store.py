"""Templates created at runtime: stored with every revision in the service database, and
merged with the file-provisioned catalog for the spawner and the service.

Rules: a template from courses/*.yaml is "managed by file" and read-only here; a template
created through the API is never overwritten by a file (on an id clash the stored one wins
and the clash is reported). Every edit is a new revision with its author, time and diff;
a rollback is a new revision equal to an older one.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from hub_ext import paths
from hub_ext.i18n import _
from hub_ext.catalog import rules
from hub_ext.images import versions
from hub_ext.catalog.model import Catalog, CatalogError, Course, Template, load_catalog, parse_template
from hub_ext.service.db import TemplateRecord, TemplateRevision, utcnow

log = logging.getLogger(__name__)


class StoreError(ValueError):
    """A refused change: `status` is the HTTP status, str() says what to do."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None):
        self.status = status
        self.problems = problems or []
        super().__init__(message)


def _env_list(env, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip()) or default


@dataclass(frozen=True)
class Policy:
    """What runtime-edited templates may point at, beyond the field rules."""

    image_prefixes: tuple[str, ...] = ("goldenhub/",)
    dataset_roots: tuple[str, ...] = ("/srv/goldenhub/datasets",)
    git_schemes: tuple[str, ...] = rules.GIT_SCHEMES
    # Never a dataset, whatever the roots: goldenhub's state (databases, secrets, logs).
    private_dirs: tuple[str, ...] = field(default_factory=lambda: (str(paths.state_dir()),))

    @classmethod
    def from_env(cls, env=os.environ) -> "Policy":
        """GOLDENHUB_IMAGE_PREFIXES and GOLDENHUB_DATASET_ROOTS (comma-separated) over the defaults;
        the same in the hub (at every start) and in the service (at every edit)."""
        return cls(image_prefixes=_env_list(env, "GOLDENHUB_IMAGE_PREFIXES", cls.image_prefixes),
                   dataset_roots=_env_list(env, "GOLDENHUB_DATASET_ROOTS", cls.dataset_roots))

    def problems(self, t: Template) -> list[str]:
        found = []
        if not t.image.startswith(self.image_prefixes):
            found.append(f"template.image: {t.image!r} is not from an allowed registry or prefix; "
                         f"allowed: {', '.join(self.image_prefixes)}")
        for i, d in enumerate(t.datasets):
            try:
                rules.resolve_dataset(d.source, self.dataset_roots, self.private_dirs)
            except rules.RuleError as e:
                found.append(f"template.datasets[{i}].source: {e}")
        return found


class DatasetUnavailable(Exception):
    """A dataset refused at start: str() is the student's sentence, `detail` the admin's."""

    def __init__(self, message: str, detail: str):
        self.detail = detail
        super().__init__(message)


def resolve_datasets(template: Template, policy: Policy) -> Template:
    """The template with every dataset source replaced by its real path, checked again now
    (a link may have changed since validation): what a start binds into the container.
    Runtime templates must stay under the dataset roots; course files are the admin's own."""
    datasets = []
    for d in template.datasets:
        roots = policy.dataset_roots if template.runtime else ()
        try:
            real = rules.resolve_dataset(d.source, roots, policy.private_dirs, must_exist=True)
        except rules.DatasetMissing as e:
            raise DatasetUnavailable(f"The dataset {d.name} is missing on this server ({d.source}); "
                                     "an administrator has been told.", f"dataset {d.name}: {e}") from None
        except rules.RuleError as e:
            raise DatasetUnavailable(f"The dataset {d.name} is not available; an administrator has been told.",
                                     f"dataset {d.name} refused: {e}") from None
        datasets.append(replace(d, source=real))
    return replace(template, datasets=tuple(datasets))


@dataclass
class MergedCatalog(Catalog):
    managed_by: dict[str, str] = field(default_factory=dict)  # template id → "file" | "api"
    disabled: dict[str, Template] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


def _as_data(record_data: str) -> dict:
    return json.loads(record_data)


def _current(session: Session, record: TemplateRecord) -> TemplateRevision:
    return session.scalars(select(TemplateRevision).where(
        TemplateRevision.template_id == record.id, TemplateRevision.number == record.current)).one()


def merge(files: Catalog, session: Session | None, git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> MergedCatalog:
    merged = MergedCatalog(courses=dict(files.courses))
    merged.managed_by = {tid: "file" for tid in files.templates}
    if session is None:
        return merged
    for record in session.scalars(select(TemplateRecord).where(TemplateRecord.deleted.is_(False))):
        revision = _current(session, record)
        try:
            template = parse_template(_as_data(revision.data), f"template {record.id} (revision {revision.number})",
                                      record.course, git_schemes)
        except CatalogError as e:
            log.error("Stored template %s is no longer valid, left out:\n%s", record.id, e)
            continue
        template = replace(template, runtime=True)  # held to the runtime policy at every start
        if record.disabled:
            merged.disabled[template.id] = template
            continue
        if merged.managed_by.get(template.id) == "file":
            merged.conflicts.append(f"{template.id}: defined in a course file and through the API; "
                                    "the API version is used (rename or remove the file's template)")
            for cid, course in merged.courses.items():
                merged.courses[cid] = replace(course, templates=tuple(t for t in course.templates if t.id != template.id))
        course = merged.courses.get(record.course) or Course(record.course, record.course_title or record.course,
                                                             "", None, (), "database")
        merged.courses[record.course] = replace(course, templates=course.templates + (template,))
        merged.managed_by[template.id] = "api"
    if versions.has_tables(session):
        merged.courses = versions.apply_pins(merged.courses, versions.current_pins(session))
    return merged


_engines: dict[str, Any] = {}


def load_full_catalog(courses_dir: Path | str, db_url: str | None,
                      git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> MergedCatalog:
    """Files plus stored templates. A database the service has not created yet adds nothing."""
    files = load_catalog(courses_dir, git_schemes)
    if not db_url:
        return merge(files, None)
    engine = _engines.get(db_url) or _engines.setdefault(db_url, create_engine(db_url, future=True))
    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).exists():
        return merge(files, None)
    if not inspect(engine).has_table("templates"):
        return merge(files, None)
    with Session(engine) as session:
        return merge(files, session, git_schemes)


def template_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _diff(old: dict | None, new: dict) -> str:
    return "".join(difflib.unified_diff(
        template_yaml(old).splitlines(True) if old else [], template_yaml(new).splitlines(True),
        "before", "after"))


def file_label(source: str) -> str:
    """A course file as people read it: its name, never the server's path to it."""
    return Path(source).name if source else ""


def _validate(data: Any, course: str, policy: Policy, tid: str | None = None) -> Template:
    """The template, or StoreError listing every problem at once: the field rules' and the
    policy's (image prefix, dataset roots) for every field that passed its rule."""
    if not isinstance(data, dict):
        raise StoreError(400, _("\"template\" must be an object of template fields"))
    if tid is not None and data.get("id", tid) != tid:
        raise StoreError(400, _("A template's id cannot change (this is %(id)s); create a new template instead",
                                id=tid))
    data = {**data, "id": tid} if tid else data
    try:
        template = parse_template(data, "template", course, policy.git_schemes)
        problems = policy.problems(template)
    except CatalogError as e:
        problems = e.problems + _policy_problems_of_valid_fields(data, policy)
        raise StoreError(400, "The template is not valid: " + "; ".join(problems), problems) from None
    if problems:
        raise StoreError(400, "The template is not allowed here: " + "; ".join(problems), problems)
    return template


def _policy_problems_of_valid_fields(data: dict, policy: Policy) -> list[str]:
    """Policy problems of the fields that passed their own rules, when others did not."""
    found = []
    try:
        image = rules.image_name(data.get("image"))
        if not image.startswith(policy.image_prefixes):
            found.append(f"template.image: {image!r} is not from an allowed registry or prefix; "
                         f"allowed: {', '.join(policy.image_prefixes)}")
    except rules.RuleError:
        pass
    datasets = data.get("datasets")
    for i, d in enumerate(datasets if isinstance(datasets, list) else []):
        source = d.get("source") if isinstance(d, dict) else None
        try:
            rules.dataset_source(source)
        except rules.RuleError:
            continue  # the field rule has said so already
        try:
            rules.resolve_dataset(source, policy.dataset_roots, policy.private_dirs)
        except rules.RuleError as e:
            found.append(f"template.datasets[{i}].source: {e}")
    return found


def _add_revision(session: Session, record: TemplateRecord, data: dict, author: str, comment: str,
                  old: dict | None) -> TemplateRevision:
    number = (record.current or 0) + 1
    revision = TemplateRevision(template_id=record.id, number=number, data=json.dumps(data), author=author,
                                at=utcnow(), comment=comment, diff=_diff(old, data))
    session.add(revision)
    record.current = number
    return revision


def create(session: Session, files: Catalog, course: str, course_title: str, data: Any, author: str,
           policy: Policy, comment: str = "") -> TemplateRecord:
    try:
        course = rules.identifier(course)
    except rules.RuleError as e:  # said together with the template's own problems
        wrong_course = f"course: {e}"
        try:
            _validate(data, "course", policy)
        except StoreError as bad:
            raise StoreError(400, f"{wrong_course}; {bad}", [wrong_course, *bad.problems]) from None
        raise StoreError(400, wrong_course, [wrong_course]) from None
    template = _validate(data, course, policy)
    if template.id in files.templates:
        raise StoreError(409, _("Template %(id)s is managed by file %(file)s; edit that file, or choose another id",
                                id=template.id, file=file_label(files.templates[template.id].source)))
    existing = session.get(TemplateRecord, template.id)
    if existing is not None and not existing.deleted:
        raise StoreError(409, _("Template %(id)s already exists; edit it instead", id=template.id))
    if existing is None:
        existing = TemplateRecord(id=template.id, course=course, course_title=course_title or course, current=0)
        session.add(existing)
    existing.deleted, existing.disabled = False, False
    existing.course, existing.course_title = course, course_title or course
    _add_revision(session, existing, dict(data), author, comment or "created", None)
    session.commit()
    return existing


def get(session: Session, files: Catalog, tid: str) -> TemplateRecord:
    record = session.get(TemplateRecord, tid)
    if record is None or record.deleted:
        if tid in files.templates:
            raise StoreError(409, _("Template %(id)s is managed by file %(file)s; it is read-only here: edit that file",
                                    id=tid, file=file_label(files.templates[tid].source)))
        raise StoreError(404, _("There is no template %(id)s.", id=tid))
    return record


def current_data(session: Session, record: TemplateRecord) -> dict:
    return _as_data(_current(session, record).data)


def update(session: Session, files: Catalog, tid: str, changes: Any, author: str, policy: Policy,
           comment: str = "", replace_all: bool = False) -> TemplateRecord:
    """A new revision: `changes` over the current fields (the API's PATCH), or, with
    replace_all, `changes` as the whole template (the editor: a field removed from the text
    is gone)."""
    record = get(session, files, tid)
    if not isinstance(changes, dict):
        raise StoreError(400, _("\"template\" must be an object of template fields"))
    old = current_data(session, record)
    new = {"id": tid, **changes} if replace_all else {**old, **changes}
    _validate(new, record.course, policy, tid)
    if new == old:
        raise StoreError(400, _("Nothing changed: the template already has these values"))
    _add_revision(session, record, new, author, comment or "edited", old)
    session.commit()
    return record


def rollback(session: Session, files: Catalog, tid: str, number: Any, author: str, policy: Policy) -> TemplateRecord:
    record = get(session, files, tid)
    target = session.scalars(select(TemplateRevision).where(
        TemplateRevision.template_id == tid, TemplateRevision.number == number)).one_or_none()
    if target is None:
        raise StoreError(400, _("Template %(id)s has no revision %(number)s; revisions: 1 to %(last)d",
                                id=tid, number=repr(number)[:20], last=record.current))
    data = _as_data(target.data)
    _validate(data, record.course, policy, tid)
    _add_revision(session, record, data, author, f"rollback to revision {number}", current_data(session, record))
    session.commit()
    return record


def set_disabled(session: Session, files: Catalog, tid: str, disabled: bool) -> TemplateRecord:
    record = get(session, files, tid)
    record.disabled = disabled
    session.commit()
    return record


def delete(session: Session, files: Catalog, tid: str) -> None:
    """Deleted templates disappear from the catalog; their revisions stay for the record."""
    record = get(session, files, tid)
    record.deleted = True
    session.commit()


def revisions(session: Session, tid: str) -> list[TemplateRevision]:
    return list(session.scalars(select(TemplateRevision).where(TemplateRevision.template_id == tid)
                                .order_by(TemplateRevision.number.desc())))


def deleted(session: Session) -> list[TemplateRecord]:
    """Deleted templates, by id: their revisions are kept and shown (read-only)."""
    return list(session.scalars(select(TemplateRecord).where(TemplateRecord.deleted.is_(True))
                                .order_by(TemplateRecord.id)))


def deleted_with_revisions(session: Session) -> list[dict]:
    """Every deleted template with all its revisions (newest first), each with its diff and
    its whole template: what the page and the API show of deleted templates."""
    return [{"id": record.id, "course": record.course,
             "revisions": [{**r.to_dict(), "template": _as_data(r.data)} for r in revisions(session, record.id)]}
            for record in deleted(session)]


def revision_data(session: Session, tid: str, number: int) -> dict:
    """The fields of one revision of a template, deleted or not (to start a new one from)."""
    revision = session.scalars(select(TemplateRevision).where(
        TemplateRevision.template_id == tid, TemplateRevision.number == number)).one_or_none()
    if revision is None:
        raise StoreError(404, _("Template %(id)s has no revision %(number)s", id=tid, number=number))
    return _as_data(revision.data)
