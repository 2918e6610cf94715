"""Warnings to one student about one server, before goldenhub or the idle culler stops it.

Kinds: `cull` (idle: the culler stops it at due_at unless it is used) and `quota` (the
course's GPU-hour quota runs out at due_at). The loops that foresee a stop write a notice
(put) and remove it when the reason goes away (clear); pages, the hub's home page and
JupyterLab read them (for_user) and show `sentence(notice)` in the reader's language.
params are the sentence's placeholders, stored as JSON: never words, so each reader gets
their own language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from hub_ext.i18n import _
from hub_ext.i18n.format import iso, when_text
from hub_ext.service.db import Notice, as_utc, utcnow

KINDS = ("cull", "quota")
WARN_MINUTES = 10  # default: how long before a stop the student is warned


@dataclass(frozen=True)
class Warning:
    user: str
    server: str  # "" for the default server
    kind: str
    due_at: datetime
    params: dict

    def to_dict(self) -> dict:
        """For the API: words in the request's language, the time as ISO 8601 UTC."""
        return {"user": self.user, "server": self.server, "kind": self.kind,
                "due_at": iso(self.due_at), "message": sentence(self)}


def put(db: sessionmaker, user: str, server: str, kind: str, due_at: datetime, **params) -> None:
    """Write (or move) the one notice of this kind for this server."""
    if kind not in KINDS:
        raise ValueError(f"notice kind is {kind!r}; allowed: {', '.join(KINDS)}")
    with db() as s:
        row = s.scalar(select(Notice).where(Notice.username == user, Notice.server == server, Notice.kind == kind))
        if row is None:
            row = Notice(username=user, server=server, kind=kind, created_at=utcnow())
            s.add(row)
        row.due_at = due_at
        row.params = json.dumps(params, sort_keys=True)
        s.commit()


def clear(db: sessionmaker, user: str, server: str | None = None, kind: str | None = None) -> int:
    """Remove this user's notices (of one server, of one kind); returns how many went."""
    query = delete(Notice).where(Notice.username == user)
    if server is not None:
        query = query.where(Notice.server == server)
    if kind is not None:
        query = query.where(Notice.kind == kind)
    with db() as s:
        n = s.execute(query).rowcount
        s.commit()
    return n or 0


def all_notices(db: sessionmaker) -> list[Warning]:
    with db() as s:
        return [_warning(r) for r in s.scalars(select(Notice).order_by(Notice.due_at))]


def for_user(db: sessionmaker, user: str) -> list[Warning]:
    with db() as s:
        rows = s.scalars(select(Notice).where(Notice.username == user).order_by(Notice.due_at))
        return [_warning(r) for r in rows]


def _warning(row: Notice) -> Warning:
    try:
        params = json.loads(row.params or "{}")
    except ValueError:
        params = {}
    return Warning(row.username, row.server, row.kind, as_utc(row.due_at), params if isinstance(params, dict) else {})


def sentence(w: Warning) -> str:
    """What the student reads: why, when, that the files stay, and what to do."""
    p = w.params
    at = when_text(w.due_at)
    if w.kind == "cull":
        return _("Your server %(template)s has been idle for %(minutes)s minutes and will be stopped at %(time)s "
                 "to free its resources. Your files stay. To keep it, use it: open JupyterLab or run a cell.",
                 template=p.get("template", ""), minutes=p.get("idle_minutes", "?"), time=at)
    return _("You have used %(used)s of %(quota)s GPU-hours in %(course)s for this %(period)s. Your server will be "
             "stopped at %(time)s when the quota runs out. Your files stay. Ask your instructor for more hours "
             "if you need them.",
             used=p.get("used", "?"), quota=p.get("quota", "?"), course=p.get("course", ""),
             period=_period_word(p.get("period", "")), time=at)


def _period_word(period: str) -> str:
    return {"week": _("week"), "term": _("term")}.get(period, period)
