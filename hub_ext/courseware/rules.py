"""The rules of the courseware mirror, as pure functions (no git, no disk, no clock).

- The hub keeps one bare mirror per course repository URL under <state>/courseware/
  (0700). Its directory name is a hash of the URL: a URL never becomes a path.
- A mirror is fetched at most once per interval (a failed try counts: a remote that is
  down is not asked again by every start of a burst), and always when a fetch that began
  before the student asked is all there is (interval 0: every start sees the remote's state
  as of its own request; starts waiting on the same fetch share it).
- The URL is checked by the catalog's rules before any fetch; the fetch is bounded in time
  and size, and only the allowed schemes are spoken (file:// and ext:: never).
- A student's container gets exactly that one mirror, read-only, at MIRROR_MOUNT; its
  gitpuller reads it as file://MIRROR_MOUNT. That file:// URL is goldenhub's own mount,
  never a course field: course files may still not name file:// (catalog rules).
- A fetch that fails keeps the last good mirror; the start then warns how old the
  materials are. No mirror at all: the container pulls from the remote as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hub_ext.i18n import _, ngettext

MIRROR_MOUNT = "/srv/goldenhub-courseware.git"
MIRROR_SOURCE = "file://" + MIRROR_MOUNT
DEFAULT_INTERVAL_S = 60.0
DEFAULT_FETCH_TIMEOUT_S = 60
DEFAULT_MAX_BYTES = 2 * 2**30


def mirror_name(url: str) -> str:
    """The mirror's directory name: 32 hex digits of the URL's sha256, then .git."""
    return hashlib.sha256(url.encode()).hexdigest()[:32] + ".git"


@dataclass(frozen=True)
class MirrorRecord:
    """What the hub remembers of one mirror (its state file)."""

    url: str = ""
    fetched: float = 0.0  # when the last good fetch began (epoch seconds); 0: never
    tried: float = 0.0  # when the last fetch began, good or not
    error: str = ""  # why the last fetch failed ('' when it did not)

    @property
    def usable(self) -> bool:
        return self.fetched > 0


def fetch_due(record: MirrorRecord, now: float, asked_at: float, interval: float) -> bool:
    """Whether a start that asked at `asked_at` must fetch now. A fetch that began after the
    student asked is as fresh as their own; otherwise the last try must be `interval` old."""
    if not record.tried:
        return True
    if record.tried >= asked_at:
        return False
    return now - record.tried >= interval


def age_words(seconds: float) -> str:
    """How long ago, in words: 'less than a minute ago', '12 minutes ago', '3 hours ago', '2 days ago'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return _("less than a minute ago")
    if seconds < 3600:
        return ngettext("%(num)d minute ago", "%(num)d minutes ago", seconds // 60)
    if seconds < 86400:
        return ngettext("%(num)d hour ago", "%(num)d hours ago", seconds // 3600)
    return ngettext("%(num)d day ago", "%(num)d days ago", seconds // 86400)


def stale_warning(record: MirrorRecord, now: float) -> str:
    """The start's warning when the mirror could not be refreshed ('' when it is current)."""
    if not record.usable or not record.error:
        return ""
    return _("course materials as of %(age)s: the course's git server did not answer",
             age=age_words(now - record.fetched))


def allowed_protocols(schemes: tuple[str, ...]) -> str:
    """GIT_ALLOW_PROTOCOL for the hub's fetch: the catalog's schemes, never file or ext."""
    return ":".join(s for s in schemes if s not in ("file", "ext", "fd"))
