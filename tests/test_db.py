"""The service database on SQLite and on a real PostgreSQL: created at the newest schema,
every migration reversible, an old schema refused until `goldenhub db upgrade`, and rows
that come back as written.

The PostgreSQL cases use the local cluster that `.ci/setup` starts (127.0.0.1:5432, role
goldenhub_test, password in /var/lib/goldenhub-test/postgres-password, one per machine); each test gets a database of
its own, so test runs in parallel do not meet. Without that cluster they fail, not skip.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError

from hub_ext.service import db
from tests.helpers import PG_PASSWORD_FILE, goldenhub


@pytest.fixture
def url(any_db_url):
    return any_db_url


def revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return db.current_revision(engine)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC), PostgreSQL aware ones."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def goldenhub_db(*args: str, url: str):
    # The URL travels in the environment, as the service gets it, not in the process list.
    return goldenhub(*args, env={"GOLDENHUB_DB_URL": url}, timeout=120)


def test_a_new_database_is_created_at_the_newest_schema(url):
    db.open_database(url).kw["bind"].dispose()
    assert revision(url) == db.head_revision()
    assert {"audit_log", "templates", "template_revisions"} <= tables(url)


def test_every_migration_downgrades_and_upgrades_again(url):
    db.open_database(url).kw["bind"].dispose()
    for script in ScriptDirectory.from_config(db.alembic_config(url)).walk_revisions():  # newest first
        assert revision(url) == script.revision
        db.downgrade(url, "-1")
        assert revision(url) == script.down_revision
    assert tables(url) <= {"alembic_version"}
    db.upgrade(url)
    assert revision(url) == db.head_revision()
    db.open_database(url).kw["bind"].dispose()


def test_an_old_schema_is_refused_until_goldenhub_db_upgrade(url):
    sessions = db.open_database(url)
    with sessions() as s:
        s.add(db.AuditEntry(actor="admin", action="reset", target_user="ann", course="lab", result="ok"))
        s.commit()
    sessions.kw["bind"].dispose()
    db.downgrade(url, "-1")
    old = revision(url)

    with pytest.raises(db.SchemaError) as refused:
        db.open_database(url)
    assert "goldenhub db upgrade" in str(refused.value)
    assert "postgres-test-password" not in str(refused.value)
    if url.startswith("postgresql"):
        assert PG_PASSWORD_FILE.read_text().strip() not in str(refused.value)

    current = goldenhub_db("db", "current", url=url)
    assert current.returncode == 0 and "goldenhub db upgrade" in current.stdout, current.stderr
    upgraded = goldenhub_db("db", "upgrade", url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded from schema {old} to {db.head_revision()}" in upgraded.stdout

    sessions = db.open_database(url)
    with sessions() as s:  # the upgrade lost nothing
        assert [(e.actor, e.target_user) for e in s.query(db.AuditEntry)] == [("admin", "ann")]
    sessions.kw["bind"].dispose()


def test_audit_rows_and_template_revisions_round_trip(url):
    sessions = db.open_database(url)
    at = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)  # the service writes UTC (db.utcnow)
    data = '{"id": "dl-gpu", "title": "Deep learning — GPU", "gpus": 1}'
    with sessions() as s:
        s.add(db.AuditEntry(at=at, actor="admin", action="restore", target_user="zoë", course="dl",
                            result="failed", detail="disk full\nsecond line"))
        s.add(db.TemplateRecord(id="dl-gpu", course="dl", course_title="Deep learning", current=2))
        s.flush()
        s.add_all([db.TemplateRevision(template_id="dl-gpu", number=1, data=data, author="ada", at=at, comment="first"),
                   db.TemplateRevision(template_id="dl-gpu", number=2, data=data.replace("1}", "2}"), author="bob",
                                       diff="- gpus: 1\n+ gpus: 2")])
        s.commit()

    with sessions() as s:
        entry = s.query(db.AuditEntry).one()
        assert (entry.actor, entry.action, entry.target_user, entry.course, entry.result, entry.detail) == (
            "admin", "restore", "zoë", "dl", "failed", "disk full\nsecond line")
        assert as_utc(entry.at) == at
        record = s.get(db.TemplateRecord, "dl-gpu")
        assert (record.course, record.course_title, record.current, record.disabled, record.deleted) == (
            "dl", "Deep learning", 2, False, False)
        revisions = s.query(db.TemplateRevision).order_by(db.TemplateRevision.number).all()
        assert [(r.number, r.author, r.data, r.comment, r.diff) for r in revisions] == [
            (1, "ada", data, "first", ""), (2, "bob", data.replace("1}", "2}"), "", "- gpus: 1\n+ gpus: 2")]
        assert as_utc(revisions[0].at) == at and as_utc(revisions[1].at) > at

    with sessions() as s, pytest.raises(IntegrityError):  # one revision number per template
        s.add(db.TemplateRevision(template_id="dl-gpu", number=2, data=data, author="eve"))
        s.commit()
    sessions.kw["bind"].dispose()
