"""GPU-hour quotas: what a student reads (picker words, the refusal, the stop reason) and
what the ledger loop does with a running server near or over its quota (warn, then stop).

Rules:
- A template's quota limits the student's hours in its course for the period
  (hub_ext.usage.records.standing): used >= quota + grants → refused at start, and a
  running server is stopped; WARN_MINUTES before it runs out, a "quota" notice warns.
- A running server's hours run at len(gpus) per hour (a metered CPU server: 1), so the
  time left is (allowed - used) / that rate.
- Hours are shown with one decimal at most ("12.5", "20").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub_ext.i18n import _
from hub_ext.i18n.format import when_text
from hub_ext.usage.notices import WARN_MINUTES
from hub_ext.usage.records import Standing

QUOTA_STOP = "quota-stop"  # audit action of a stop at the quota
QUOTA_ACTOR = "quota"


def hours_text(hours: float) -> str:
    text = f"{hours:.1f}"
    return text[:-2] if text.endswith(".0") else text


def picker_words(st: Standing, gpus: int) -> str:
    """Beside a quota'd template on the picker: "12.5 of 20 GPU-hours used"."""
    if gpus:
        return _("%(used)s of %(allowed)s GPU-hours used", used=hours_text(st.used), allowed=hours_text(st.allowed))
    return _("%(used)s of %(allowed)s server-hours used", used=hours_text(st.used), allowed=hours_text(st.allowed))


def _what_next(st: Standing) -> str:
    if st.renews_at is not None:
        return _("Your hours renew at %(time)s; for more hours now, ask your instructor.",
                 time=when_text(st.renews_at))
    return _("Ask your instructor for more hours.")


def refusal(st: Standing, gpus: int, template: str, course: str) -> str:
    """Why a start is refused: the quota, what was used, what to do."""
    period = _("this week") if st.period == "week" else _("this term")
    if gpus:
        first = _("%(template)s cannot start: you have used %(used)s of your %(allowed)s GPU-hours in %(course)s "
                  "%(period)s.", template=template, used=hours_text(st.used), allowed=hours_text(st.allowed),
                  course=course, period=period)
    else:
        first = _("%(template)s cannot start: you have used %(used)s of your %(allowed)s server-hours in "
                  "%(course)s %(period)s.", template=template, used=hours_text(st.used),
                  allowed=hours_text(st.allowed), course=course, period=period)
    return f"{first} {_what_next(st)}"


def stop_reason(st: Standing, course: str, at: datetime) -> str:
    """What the student reads after goldenhub stopped their server at the quota."""
    return _("Your server was stopped at %(time)s because you used all %(allowed)s hours of your %(course)s "
             "quota; your files are kept.", time=when_text(at), allowed=hours_text(st.allowed),
             course=course) + " " + _what_next(st)


@dataclass(frozen=True)
class Running:
    """A running metered server with a quota, as the ledger loop sees it."""

    user: str
    server: str
    course: str
    template: str
    rate: int  # hours counted per hour held (its GPUs; 1 for a metered CPU server)
    standing: Standing


@dataclass(frozen=True)
class Plan:
    warn: tuple[tuple[Running, datetime], ...] = ()  # (server, when its quota runs out)
    stop: tuple[Running, ...] = ()
    clear: tuple[Running, ...] = ()  # under quota and not near it: no notice


def plan(running: list[Running], now: datetime, warn_minutes: int = WARN_MINUTES) -> Plan:
    """Which running servers to warn, stop, or clear of a quota notice."""
    warn, stop, clear = [], [], []
    for r in running:
        st = r.standing
        if st.over:
            stop.append(r)
            continue
        due = now + timedelta(hours=st.left / max(1, r.rate))
        if due - now <= timedelta(minutes=warn_minutes):
            warn.append((r, due))
        else:
            clear.append(r)
    return Plan(tuple(warn), tuple(stop), tuple(clear))
