"""The service's own database: SQLAlchemy models and the schema check.

The schema is owned by alembic migrations (hub_ext/service/migrations). A new database is created
at the newest schema; an existing one at an older schema is refused with the command that
upgrades it, never migrated behind the admin's back.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from hub_ext.i18n.deferred import told

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything goldenhub writes is UTC."""
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class AuditEntry(Base):
    """One admin or student action on someone's environment: who, whom, when, result."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target_user: Mapped[str] = mapped_column(String(255), index=True)
    course: Mapped[str] = mapped_column(String(64), default="")
    result: Mapped[str] = mapped_column(String(32))  # ok | failed | refused
    detail: Mapped[str] = mapped_column(Text, default="")

    def to_dict(self) -> dict:
        return {"id": self.id, "at": as_utc(self.at).isoformat(), "actor": self.actor, "action": self.action,
                "user": self.target_user, "course": self.course, "result": self.result, "detail": self.detail_text}

    @property
    def detail_text(self) -> str:
        """The detail in the reader's language (a deferred sentence is translated now)."""
        return told(self.detail)


class SchemaError(RuntimeError):
    pass


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def open_database(url: str) -> sessionmaker:
    """Engine and session factory for `url`; creates a new database at the newest schema,
    refuses one at an older schema."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    current = current_revision(engine)
    if current is None and set(inspect(engine).get_table_names()) <= {"alembic_version"}:
        upgrade(url)
    elif current != head_revision():
        raise SchemaError(
            f"The goldenhub database {engine.url.render_as_string(hide_password=True)} is at schema "
            f"{current or 'none'}, this version needs {head_revision()}. "
            "Back it up, then run: goldenhub db upgrade")
    return sessionmaker(engine, expire_on_commit=False)


_shared: dict[str, sessionmaker] = {}


def shared_database(url: str) -> sessionmaker:
    """One session factory (one engine and its pool) per URL for a whole process: the hub's
    spawners and handlers that read or write the service's database share it."""
    if url not in _shared:
        _shared[url] = open_database(url)
    return _shared[url]


class TemplateRecord(Base):
    """A template created at runtime (templates from course files are not stored here)."""

    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    course: Mapped[str] = mapped_column(String(40))
    course_title: Mapped[str] = mapped_column(String(100), default="")
    current: Mapped[int] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class TemplateRevision(Base):
    """One edit of a template: the whole template as it became, who, when, and the diff."""

    __tablename__ = "template_revisions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(40), ForeignKey("templates.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)  # JSON of the template's fields
    author: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
    diff: Mapped[str] = mapped_column(Text, default="")

    def to_dict(self) -> dict:
        return {"number": self.number, "author": self.author, "at": as_utc(self.at).isoformat(),
                "comment": self.comment, "diff": self.diff}


class Enrolment(Base):
    """One person in one course: the roster's or the LMS's record of them.

    Access itself is hub group membership (contract.course_group / staff_group); this row
    holds what the hub does not: the role as the roster or LMS named it, the display name and
    email, where it came from (roster | lti | admin), and who changed it last. A student
    removed from a course loses this row and the group membership; their home is kept."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("course", "username"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))  # contract.ROLES
    display_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(16))  # roster | lti | admin
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))

    def to_dict(self) -> dict:
        return {"course": self.course, "username": self.username, "role": self.role,
                "display_name": self.display_name, "email": self.email, "source": self.source,
                "updated_at": as_utc(self.updated_at).isoformat(), "updated_by": self.updated_by}


class UsageSession(Base):
    """One container that held GPUs (or a metered CPU server): the ledger's row
    (hub_ext.usage.ledger.Session). end_reason: stop | cull | quota | crash | gone | ""."""

    __tablename__ = "usage_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    container_id: Mapped[str] = mapped_column(String(80), unique=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    template: Mapped[str] = mapped_column(String(40))
    gpus: Mapped[str] = mapped_column(String(255), default="")  # device ids, comma-separated
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    end_reason: Mapped[str] = mapped_column(String(16), default="")


class UsageGrant(Base):
    """Extra hours an instructor or admin gave one student in one course (also audited)."""

    __tablename__ = "usage_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    hours: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")


class Notice(Base):
    """A warning to one student about one server: kind cull (idle) or quota, due at due_at.
    params: JSON of the words' placeholders (minutes, hours, template...), translated when shown.
    One row per (user, server, kind); removed when the reason goes away."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("username", "server", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    server: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    params: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StartEvent(Base):
    """One server start as the spawner saw it: queued, admitted, finished with an outcome
    (ok | failed | refused) and a short reason code (quota, no-gpu, image, timeout, ...)."""

    __tablename__ = "start_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255), default="")
    course: Mapped[str] = mapped_column(String(40), default="")
    template: Mapped[str] = mapped_column(String(40), default="")
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(64), default="")


class ImageVersion(Base):
    """One published golden image of a course: built, smoke-tested and pushed, pullable by
    `reference` (REGISTRY/goldenhub/course-<id>@sha256:...). `number` counts per course (1, 2, ...).
    labels: JSON of the image's labels (its provenance), as read after the build."""

    __tablename__ = "image_versions"
    __table_args__ = (UniqueConstraint("course", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    number: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(400))  # by digest
    tag: Mapped[str] = mapped_column(String(400), default="")  # the pushed tag, for people
    image_id: Mapped[str] = mapped_column(String(80), index=True)  # the local image id (sha256:...)
    commit: Mapped[str] = mapped_column(String(64), default="")  # of the environment's source
    ref: Mapped[str] = mapped_column(String(200), default="")  # the git ref asked for ("" = default)
    requirements_digest: Mapped[str] = mapped_column(String(80), default="")
    labels: Mapped[str] = mapped_column(Text, default="{}")
    published_by: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    publish_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PinRevision(Base):
    """Which published version a course's templates use, from `at` on: the newest row (highest
    number) of a course is its pin. A publish and a rollback each add one (action publish |
    rollback); nothing is ever changed in place."""

    __tablename__ = "pin_revisions"
    __table_args__ = (UniqueConstraint("course", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int] = mapped_column(Integer, ForeignKey("image_versions.id"))
    action: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PublishRun(Base):
    """One publish of a course, from the page or the command line. state: running | succeeded |
    failed; step: the step running or the one that failed (build | smoke | push | pin | prepull);
    message: the sentence a failure ends with; log_path: the whole log, kept after the run.
    holder: host:pid of the process doing it (a crashed holder's run is marked failed)."""

    __tablename__ = "publish_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    ref: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="running")
    step: Mapped[str] = mapped_column(String(16), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    log_path: Mapped[str] = mapped_column(String(500), default="")
    holder: Mapped[str] = mapped_column(String(255), default="")
    version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PublishLock(Base):
    """At most one publish per course at a time: the row of a course names the run holding it."""

    __tablename__ = "publish_locks"
    course: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClassSession(Base):
    """A scheduled class of a course (hub_ext.sessions): its students' servers of `template`
    are started `lead_minutes` before `starts_at`; cancelled ones keep their row."""

    __tablename__ = "class_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course: Mapped[str] = mapped_column(String(40), index=True)
    template: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    lead_minutes: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_by: Mapped[str] = mapped_column(String(255), default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ClassSessionStudent(Base):
    """What a session did for one student: state pre-started | opened | stopped-unopened |
    failed (hub_ext.sessions.planner); server_started: the hub's start time of the server it
    started, so a later server of the student's own is never taken for it; ready_seen: when the
    loop first saw that server ready (activity after it means someone opened it)."""

    __tablename__ = "class_session_students"
    __table_args__ = (UniqueConstraint("session_id", "username"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer, ForeignKey("class_sessions.id"), index=True)
    username: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20))
    server_started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ready_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
