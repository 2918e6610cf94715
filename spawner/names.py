"""Naming rules for everything goldenhub creates in Docker, computed in this one place.

Escaped names use only [a-z0-9] and '-XX' hex escapes, so '--' never occurs inside an
escaped part and can separate parts without collisions: user 'user--foo' escapes to
'user-2d-2dfoo', which differs from user 'user' with server 'foo' ('user--foo').
Names are recorded in spawner state when first used, so changing these rules later
never detaches an existing home.
"""

import hashlib
import string

from escapism import escape

SAFE = string.ascii_lowercase + string.digits
MAX_PART = 48  # keeps full names well under Docker's limits


def escape_part(text: str) -> str:
    escaped = escape(text, safe=SAFE, escape_char="-")
    if len(escaped) > MAX_PART:
        # Long names keep a readable head and a hash of the whole, so they stay unique.
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        escaped = f"{escaped[:MAX_PART - 13]}-{digest}"
    return escaped


def container_name(prefix: str, user: str, server: str = "") -> str:
    name = f"{prefix}-{escape_part(user)}"
    return f"{name}--{escape_part(server)}" if server else name


def home_volume_name(prefix: str, user: str, course: str) -> str:
    """One home per student per course."""
    return f"{prefix}-home-{escape_part(user)}--{escape_part(course)}"
