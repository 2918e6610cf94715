"""Deferred sentences: text written now and read later, by someone else, in their language.

A stop reason (hub_ext.homes.stop_notes, the spawner's state) or an audit entry's detail is
written in the language of whoever caused it (an administrator, the hub's own request) but read
by another person in theirs. So it is kept as `deferred()`: a prefix and JSON holding the
English source string (marked with N_) and its values; `told()` translates it when it is shown.
Text that is not deferred (older rows, free text) is shown as it is.
"""

from __future__ import annotations

import json

from hub_ext.i18n import _
from hub_ext.i18n.text import LocalText

DEFERRED = "goldenhub-sentence:"  # the prefix of a deferred sentence (JSON after it)


def deferred(msgid: str, **values) -> str:
    """A sentence kept to be translated when it is shown: `msgid` is a marked English source
    string (N_); `values` are str or int, or a LocalText (kept with its languages)."""
    kept = {k: {"text": str.__str__(v), "translations": v.translations} if isinstance(v, LocalText) else v
            for k, v in values.items()}
    return DEFERRED + json.dumps({"msgid": msgid, "values": kept}, ensure_ascii=False)


def told(text: str) -> str:
    """The text in the current language: a deferred sentence translated now, other text as it is
    ('' for a deferred sentence that cannot be read)."""
    if not isinstance(text, str) or not text.startswith(DEFERRED):
        return text if isinstance(text, str) else ""
    try:
        record = json.loads(text[len(DEFERRED):])
        values = {k: LocalText(v["text"], v["translations"]).text() if isinstance(v, dict) else v
                  for k, v in record["values"].items()}
        return _(record["msgid"], **values)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
