"""Naming rules for everything goldenhub creates in Docker, computed in this one place.

Rules (they make names injective over every username JupyterHub accepts):

- An escaped part uses only [a-z0-9] and '-XX' escapes (XX: always two upper-case hex
  digits of one UTF-8 byte; '-' itself is escaped as '-2D'). So every '-' in an escaped part
  is followed by two hex digits: an escaped part never contains '--' and never ends in '-',
  and it decodes back to one text only. (escapism writes byte 0x01 as '-1', so '\x012'
  and '\x12' would both give '-12': that is why the escaping is done here.)
- '--' therefore separates parts without ambiguity: user 'user--foo' escapes to
  'user-2D-2Dfoo', which differs from user 'user' with server 'foo' ('user--foo').
- A part longer than MAX_PART is shortened to a readable head, the marker '_' and 12 hex
  digits of the SHA-256 of the whole text. '_' never occurs in an escaped part, so a
  shortened part can never equal another name's unshortened escape; two shortened parts
  are equal only if their texts collide in the hash.
- Names are recorded in spawner state when first used (homes; the container's name while it
  runs), so changing these rules later never detaches an existing home or server.
"""

import hashlib
import string

SAFE = string.ascii_lowercase + string.digits
MAX_PART = 48  # keeps full names well under Docker's limits
SHORTENED = "_"  # marks a shortened part; never produced by escaping
DIGEST = 12  # hex digits of the hash a shortened part keeps


def escape(text: str) -> str:
    """Each character outside SAFE becomes '-XX' per UTF-8 byte."""
    return "".join(c if c in SAFE else "".join(f"-{b:02X}" for b in c.encode()) for c in text)


def escape_part(text: str) -> str:
    escaped = escape(text)
    if len(escaped) > MAX_PART:
        digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST]
        escaped = f"{escaped[:MAX_PART - DIGEST - len(SHORTENED)]}{SHORTENED}{digest}"
    return escaped


def container_name(prefix: str, user: str, server: str = "") -> str:
    name = f"{prefix}-{escape_part(user)}"
    return f"{name}--{escape_part(server)}" if server else name


def home_volume_name(prefix: str, user: str, course: str) -> str:
    """One home per student per course."""
    return f"{prefix}-home-{escape_part(user)}--{escape_part(course)}"
