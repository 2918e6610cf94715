"""Credentials in URLs never leave the service: a pure function masking the userinfo of
every URL in a value (strings, dicts and lists walked), for answers, pages and logs."""

from __future__ import annotations

import re
from typing import Any

# scheme://userinfo@ in a URL. The userinfo is masked whole for every scheme but ssh/git,
# where a bare user name (ssh://git@host) is an account, not a secret; a password always is.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://([^/?#\s]+)@")
MASK = "***"


def _mask_one(m: re.Match) -> str:
    scheme, userinfo = m.group(1), m.group(2)
    user, has_password, _ = userinfo.partition(":")
    if scheme.lower() in ("ssh", "git+ssh", "git") and not has_password:
        return m.group(0)
    if has_password and scheme.lower() in ("ssh", "git+ssh", "git"):
        return f"{scheme}://{user}:{MASK}@"
    return f"{scheme}://{MASK}@"


def mask_credentials(value: Any) -> Any:
    """`value` with the userinfo of every URL in every string masked (dicts and lists walked)."""
    if isinstance(value, str):
        return _USERINFO.sub(_mask_one, value)
    if isinstance(value, dict):
        return {k: mask_credentials(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_credentials(v) for v in value]
    return value
