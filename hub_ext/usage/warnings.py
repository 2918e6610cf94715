"""The warnings a student is shown before a stop (hub_ext.usage.notices), as the pages, the
hub's home page and JupyterLab read them: one JSON item per notice, in the reader's language.

Rules:
- Only the reader's own notices, never anyone else's: the caller passes the logged-in name.
- An item is Warning.to_dict() (user, server, kind, due_at as ISO 8601 UTC, message: the whole
  sentence) plus `due_text`, the time exactly as written inside `message` (so a page can turn
  that part into a <time> element the viewer sees in their own zone), and `short`: the same
  warning in at most SHORT_MAX characters, for JupyterLab's notifications (it cuts longer
  messages at 140 characters). Words are chosen in the current language (hub_ext.i18n).
- Reading the database blocks: callers on an event loop run items() in a thread
  (asyncio.to_thread copies the request's language with its context).
"""

from __future__ import annotations

from hub_ext.i18n import _
from hub_ext.i18n.format import when_text
from hub_ext.usage import notices

SHORT_MAX = 140  # JupyterLab 4's notifications show at most this many characters


def short_sentence(w: notices.Warning) -> str:
    """Why and when in one short line: what JupyterLab's notification area can show whole."""
    at = when_text(w.due_at)
    if w.kind == "cull":
        text = _("Idle: your server stops at %(time)s to free its resources. Your files stay; use it to keep it.",
                 time=at)
    else:
        text = _("GPU-hour quota running out: your server stops at %(time)s. Your files stay; ask your "
                 "instructor for more hours.", time=at)
    return text if len(text) <= SHORT_MAX else text[:SHORT_MAX - 1] + "…"


def item(w: notices.Warning) -> dict:
    return {**w.to_dict(), "due_text": when_text(w.due_at), "short": short_sentence(w)}


def items(db, user: str) -> list[dict]:
    """The user's own warnings, soonest first (blocking: see the module rules)."""
    if not user:
        return []
    return [item(w) for w in notices.for_user(db, user)]
