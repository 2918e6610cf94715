"""Field rules for how long a template's servers may idle and how many hours they may use.

Rules: idle_timeout is whole minutes 0..10080 (a week); 0 means the server is never culled;
left out it is 60 for a template with GPUs, else 240. A quota is {gpu_hours, period}:
gpu_hours a number above 0 and at most 100000, period "term" (since the course's last term
close) or "week" (Monday 00:00 UTC); left out, the template is unmetered. A CPU template's
quota counts server-hours the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub_ext.catalog.rules import RuleError, _given, _got, _number
from hub_ext.i18n import _

MAX_IDLE_MINUTES = 7 * 24 * 60
GPU_IDLE_DEFAULT = 60
CPU_IDLE_DEFAULT = 240
MAX_QUOTA_HOURS = 100000
PERIODS = ("term", "week")
QUOTA_FIELDS = ("gpu_hours", "period")


@dataclass(frozen=True)
class Quota:
    gpu_hours: float  # hours per period; for a CPU template, server-hours
    period: str  # "term" | "week"


def default_idle_timeout(gpus: int | None) -> int:
    return GPU_IDLE_DEFAULT if gpus else CPU_IDLE_DEFAULT


def idle_timeout(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_IDLE_MINUTES:
        raise _got(value, _("allowed: whole minutes from 0 (never culled) to %(most)d (a week), e.g. 60",
                             most=MAX_IDLE_MINUTES))
    return value


def quota(value: Any) -> Quota | None:
    """None (no quota) or a mapping {gpu_hours: 20, period: term}."""
    if value is None:
        return None
    example = "{gpu_hours: 20, period: term}"
    if not isinstance(value, dict):
        raise _got(value, _("allowed: a mapping with gpu_hours and period, e.g. %(example)s", example=example))
    unknown = sorted(str(k) for k in value if k not in QUOTA_FIELDS)
    if unknown:
        raise RuleError(_("unknown field %(fields)s; allowed fields: gpu_hours, period (e.g. %(example)s)",
                          fields=", ".join(unknown), example=example))
    hours = value.get("gpu_hours")
    if not _number(hours) or not 0 < hours <= MAX_QUOTA_HOURS:
        raise RuleError(_("gpu_hours: got %(value)s; allowed: a number of hours above 0 and at most %(most)d, "
                          "e.g. %(example)s", value=_given(hours), most=MAX_QUOTA_HOURS, example=example))
    period = value.get("period", "term")
    if period not in PERIODS:
        raise RuleError(_("period: got %(value)s; allowed: term (until the course's next term close) or week "
                          "(renews Monday 00:00 UTC)", value=_given(period)))
    return Quota(float(hours), period)


def quota_data(q: Quota | None) -> dict | None:
    """The quota as written in a course file or returned by the API."""
    if q is None:
        return None
    hours = int(q.gpu_hours) if q.gpu_hours == int(q.gpu_hours) else q.gpu_hours
    return {"gpu_hours": hours, "period": q.period}
