"""One way to write a time, a size and a memory limit, on every page, in the CLI and in
messages.

Rules:
- Times: pages carry `<time datetime="2026-11-26T12:53:11Z">2026-11-26 12:53 UTC</time>`
  (when_html); the static script localtime.js rewrites it in the viewer's time zone and
  language. The text without the script, the CLI and messages use `2026-11-26 12:53 UTC`
  (when_text): minutes, UTC, always named.
- Sizes are binary, one decimal below 10, a space before the unit: `512 MiB`, `4 GiB`,
  `1.5 TiB` (size_text). Memory limits of course files (`4G`, `512M`, Docker's binary
  units) are written the same way (memory_text): never `4G` on one page and `4096 MiB` on
  another.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from markupsafe import Markup, escape

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _aware(value: datetime | str | int | float | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # goldenhub stores naive times as UTC
    return value.astimezone(timezone.utc)


def iso(value) -> str:
    """Machine form: 2026-11-26T12:53:11Z ('' for no time)."""
    t = _aware(value)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else ""


def when_text(value, empty: str = "–") -> str:
    """2026-11-26 12:53 UTC (`empty` for no time)."""
    t = _aware(value)
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else empty


def when_html(value, empty: str = "–") -> Markup:
    """A <time> element that localtime.js shows in the viewer's zone and language."""
    t = _aware(value)
    if not t:
        return Markup(escape(empty))
    return Markup('<time datetime="%s">%s</time>') % (iso(t), when_text(t))


def size_text(n: int | float | None, empty: str = "–") -> str:
    """Bytes as `512 MiB`, `4 GiB`, `1.5 TiB`."""
    if n is None:
        return empty
    n = float(n)
    unit = 0
    while abs(n) >= 1024 and unit < len(_UNITS) - 1:
        n /= 1024
        unit += 1
    if unit == 0:
        return f"{int(n)} B"
    tenths = round(n, 1)  # 9.99 is "10", not "10.0"
    text = f"{tenths:.1f}" if abs(tenths) < 10 and tenths != int(tenths) else f"{round(n):d}"
    return f"{text} {_UNITS[unit]}"


_MEMORY = re.compile(r"(?i)(\d{1,15}(?:\.\d{1,6})?)\s*([kmgt]?)i?b?")  # bounded: never float('inf')


def memory_bytes(limit: str | int | None) -> int | None:
    """A memory limit as course files write it ('4G', '512M', '1.5g', '4GiB', bytes) in
    bytes (Docker's units are binary); None if absent or unreadable."""
    if limit is None or limit == "":
        return None
    if isinstance(limit, int):
        return limit
    m = _MEMORY.fullmatch(str(limit).strip())
    if not m:
        return None
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def memory_text(limit: str | int | None, empty: str = "–") -> str:
    n = memory_bytes(limit)
    return size_text(n, empty) if n is not None else (str(limit) if limit else empty)


def install_filters(env) -> None:
    """The filters every template uses: {{ t|when }}, {{ n|size }}, {{ limit|memory }}."""
    env.filters.update(when=when_html, when_text=when_text, size=size_text, memory=memory_text, iso=iso)
