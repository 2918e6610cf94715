"""GPU-hours by day as an accessible SVG chart, rendered server-side, pure (no matplotlib).

Rules:
- daily_hours: one bar per UTC day from `first` to `last` inclusive; a day's value is the
  GPU-hours every session held inside that day (clipped to `now`), so a session across
  midnight counts on both days and the days add up to the period's total.
- make_svg: an <svg role="img"> with aria-label, <title> and <desc> (the total and the
  busiest day, in words), one <rect class="bar"> per day whose height is proportional to its
  hours (a day with use is at least 1 pixel high, a day without is 0), day labels under the
  bars (every day up to 16 days, else every 7th), a top axis label and the value of each bar
  in its own <title> (a tooltip). Colours come from currentColor and CSS classes, so the
  chart follows the page's light or dark mode. With no hours at all it shows "No GPU use yet"
  and has no bars. Every text is XML-escaped. The data table for screen readers is the
  page's (the same rows, beside the chart).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from hub_ext.i18n import _
from hub_ext.usage.ledger import Session

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 24, 36  # margins: axis label left, day labels below
MAX_DAYS = 366


def hours_text(hours: float) -> str:
    """Hours with one decimal, the one style of hours on the usage pages."""
    return f"{hours:.1f}"


def daily_hours(sessions: Iterable[Session], first: date, last: date, now: datetime) -> list[tuple[date, float]]:
    """[(day, GPU-hours)] for each UTC day from `first` to `last` (at most MAX_DAYS days)."""
    days = max(0, min((last - first).days + 1, MAX_DAYS))
    sessions = list(sessions)
    out = []
    for i in range(days):
        day = first + timedelta(days=i)
        start = datetime.combine(day, time(0), tzinfo=timezone.utc)
        end = min(start + timedelta(days=1), now)
        seconds = sum(s.gpu_seconds(start, end) for s in sessions) if end > start else 0.0
        out.append((day, seconds / 3600))
    return out


def _nice_top(peak: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten at or above `peak`."""
    step = 1.0
    while step * 10 <= peak:
        step *= 10
    while step > 0.1 and step / 10 >= peak:
        step /= 10
    for factor in (1, 2, 5, 10):
        if peak <= step * factor:
            return step * factor
    return step * 10


def make_svg(days: list[tuple[date, float]], title: str) -> str:
    """The chart's SVG markup (see the module rules); `title` names what it shows."""
    total = sum(h for _d, h in days)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    if days and total > 0:
        busiest = max(days, key=lambda x: x[1])
        desc = _("%(total)s GPU-hours in %(days)s days, from %(first)s to %(last)s; the busiest day was %(day)s "
                 "with %(hours)s GPU-hours.", total=hours_text(total), days=len(days), first=days[0][0].isoformat(),
                 last=days[-1][0].isoformat(), day=busiest[0].isoformat(), hours=hours_text(busiest[1]))
    else:
        desc = _("No GPU use yet")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="goldenhub-chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
             f'aria-label={quoteattr(title + ": " + desc)}>',
             f"<title>{escape(title)}</title>", f"<desc>{escape(desc)}</desc>",
             f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" '
             f'stroke="currentColor" stroke-opacity="0.5"/>']
    if not days or total <= 0:
        parts.append(f'<text class="empty" x="{WIDTH // 2}" y="{TOP + plot_h // 2}" text-anchor="middle" '
                     f'fill="currentColor">{escape(_("No GPU use yet"))}</text></svg>')
        return "".join(parts)
    top = _nice_top(max(h for _d, h in days))
    parts.append(f'<text class="axis-label" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" '
                 f'fill="currentColor">{escape(hours_text(top))}</text>'
                 f'<text class="axis-label" x="{LEFT - 6}" y="{base}" text-anchor="end" font-size="11" '
                 f'fill="currentColor">0</text>'
                 f'<text class="axis-title" x="{LEFT}" y="{TOP - 10}" font-size="11" '
                 f'fill="currentColor">{escape(_("GPU-hours"))}</text>')
    slot = plot_w / len(days)
    bar_w = max(1.0, slot * 0.7)
    label_every = 1 if len(days) <= 16 else 7
    for i, (day, hours) in enumerate(days):
        height = 0.0 if hours <= 0 else max(1.0, hours / top * plot_h)
        x = LEFT + i * slot + (slot - bar_w) / 2
        tip = _("%(day)s: %(hours)s GPU-hours", day=day.isoformat(), hours=hours_text(hours))
        parts.append(f'<rect class="bar" data-day="{day.isoformat()}" data-hours="{hours_text(hours)}" '
                     f'x="{x:.1f}" y="{base - height:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
                     f'fill="currentColor" fill-opacity="0.75"><title>{escape(tip)}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text class="day-label" x="{x + bar_w / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                         f'font-size="10" fill="currentColor">{escape(day.strftime("%m-%d"))}</text>')
    parts.append("</svg>")
    return "".join(parts)
