"""Every name shared between the hub (spawner), the service, the command line and the
helper containers, written once: Docker object names, Docker labels, the spawner's state
keys, the reset-marker path and the helper image. Other modules import these; none of them
writes such a string itself, and only this module looks into a spawner's saved state.

Naming rules for everything goldenhub creates in Docker (they make names injective over
every username JupyterHub accepts):

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

from __future__ import annotations

import hashlib
import os
import string
from datetime import datetime, timezone
from pathlib import Path

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


def backup_volume_name(home_volume: str, when: datetime) -> str:
    """A home's backup, named after the home and the moment (UTC, to the second); a second
    backup in the same second gets '-2', '-3', ... appended by the one who makes it."""
    return f"{home_volume}-backup-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


def is_home_volume_name(prefix: str, volume: str) -> bool:
    """Whether a volume is one of this deployment's homes (or backups of them) by its name."""
    return volume.startswith(f"{prefix}-home-")


# --- Docker labels ------------------------------------------------------------------------
# A student's container: who, which server, course and template, its home, its GPUs.
LABEL_USER = "goldenhub.user"
LABEL_SERVER = "goldenhub.server"
LABEL_COURSE = "goldenhub.course"
LABEL_TEMPLATE = "goldenhub.template"
LABEL_HOME_VOLUME = "goldenhub.home-volume"
LABEL_GPUS = "goldenhub.gpus"  # comma-separated GPU ids; present on every student container
# Home volumes carry LABEL_USER and LABEL_COURSE; a backup also these.
LABEL_KIND = "goldenhub.kind"  # KIND_BACKUP on backups, KIND_RESET_HELPER on copy helpers
LABEL_BACKUP_OF = "goldenhub.backup-of"  # the home volume a backup was made from
LABEL_CREATED = "goldenhub.created"  # ISO time (UTC) of a backup
LABEL_RESTORED_FROM = "goldenhub.restored-from"  # on a home restored from a backup
LABEL_OPERATION = "goldenhub.operation"  # one copy's id, on its helpers and the volume it made
# Reset-helper containers: the owner process, expiry, what they copy, guard or copier.
LABEL_OWNER = "goldenhub.owner"
LABEL_EXPIRES = "goldenhub.expires"
LABEL_SOURCE = "goldenhub.source"
LABEL_DEST = "goldenhub.dest"
LABEL_ROLE = "goldenhub.role"
KIND_BACKUP = "backup"
KIND_RESET_HELPER = "reset-helper"
KIND_EXPORT_HELPER = "export-helper"  # a never-started container a term close reads a backup through
# The students' Docker network.
LABEL_NETWORK = "goldenhub.network"
# Golden images (and LABEL_COURSE on a course layer): which layer, framework, templates, and how to run it by hand.
LABEL_IMAGE_LAYER = "goldenhub.layer"
LABEL_IMAGE_FRAMEWORK = "goldenhub.framework"
LABEL_IMAGE_FRAMEWORK_REQUESTED = "goldenhub.framework.requested"
LABEL_IMAGE_TEMPLATES = "goldenhub.templates"
LABEL_IMAGE_RUN = "goldenhub.run"
# A course layer built from declarative files (hub_ext.images.course_env): where its files came
# from (a path or the courseware repo's URL), the commit and the ref asked for, the SHA-256 of
# requirements.txt + apt.txt + postBuild, and the exact parent images (name:version).
LABEL_ENV_SOURCE = "goldenhub.env.source"
LABEL_ENV_COMMIT = "goldenhub.env.commit"
LABEL_ENV_REF = "goldenhub.env.ref"
LABEL_REQUIREMENTS = "goldenhub.requirements"
LABEL_BASE_IMAGE = "goldenhub.base.image"
LABEL_FRAMEWORK_IMAGE = "goldenhub.framework.image"
# A publish's smoke-test container and its scratch home carry LABEL_KIND=KIND_SMOKE_TEST, the
# owner and expiry labels above, and LABEL_COURSE; whatever outlives its owner is removed.
KIND_SMOKE_TEST = "smoke-test"


def smoke_container_name(prefix: str, course: str, run_id: int) -> str:
    return f"{prefix}-smoke-{escape_part(course)}-{run_id}"


def smoke_home_name(prefix: str, course: str, run_id: int) -> str:
    """Not a home: is_home_volume_name is false for it, so no listing takes it for a student's."""
    return f"{prefix}-smoke-{escape_part(course)}-{run_id}-scratch"


def label_filter(label: str, value: str | None = None) -> str:
    """A Docker label filter: the label present, or the label with this value."""
    return label if value is None else f"{label}={value}"


# --- the spawner's state (saved by the hub in its database) -------------------------------
STATE_HOMES = "homes"  # {course: home volume name}, recorded when first used
STATE_TEMPLATE = "template"  # the template id of the last start
STATE_GPUS = "gpus"  # the GPU ids the running server holds
STATE_STOP_REASON = "stop_reason"  # why the server stopped, told once at the next start
STATE_CONTAINER = "object_name"  # DockerSpawner's: the container's name while it exists
OPTION_TEMPLATE = "template"  # the user option (form field) naming the template to start


def _state(server: dict) -> dict:
    return server.get("state") or {}


def ever_started(server: dict) -> bool:
    """Whether the spawner saved any state for the server (it started at least once)."""
    return bool(_state(server))


def homes_of(server: dict) -> dict[str, str]:
    """A server's home volumes by course, from the hub's server model (with state)."""
    return dict(_state(server).get(STATE_HOMES) or {})


def template_of(server: dict) -> str:
    """The template id of the server's last start ('' if it never started)."""
    return _state(server).get(STATE_TEMPLATE) or ""


def requested_template_of(server: dict) -> str:
    """The template of the start now running or pending (its options), else the last start's."""
    return (server.get("user_options") or {}).get(OPTION_TEMPLATE) or template_of(server)


def gpus_of(server: dict) -> list[str]:
    """The GPU ids the server holds ([] for none)."""
    return list(_state(server).get(STATE_GPUS) or [])


def container_of(server: dict) -> str:
    """The name of the server's container ('' when it has none)."""
    return _state(server).get(STATE_CONTAINER) or ""


# --- files and images shared between processes --------------------------------------------

def reset_marker(state_dir: Path, home_volume: str) -> Path:
    """The file saying "this home is being reset" (written by the service, read by the spawner)."""
    return Path(state_dir) / "resetting" / home_volume


# The OS base golden layer (built by hub_ext.images, offline with debootstrap if asked),
# which is also the default image of the reset helpers.
OS_BASE_REPOSITORY = "goldenhub/os-base"
OS_BASE_SUITE = "bookworm"
HELPER_IMAGE_ENV = "GOLDENHUB_HELPER_IMAGE"
DEFAULT_HELPER_IMAGE = f"{OS_BASE_REPOSITORY}:{OS_BASE_SUITE}"


def helper_image() -> str:
    """The image of the containers that copy homes (GOLDENHUB_HELPER_IMAGE, else the os-base
    golden layer); it must exist locally and is never pulled."""
    return os.environ.get(HELPER_IMAGE_ENV) or DEFAULT_HELPER_IMAGE


# --- Course groups: enrolment is JupyterHub group membership ------------------------------
# Every course has two hub groups: its enrolled students and its staff (instructors and
# teaching assistants). Course ids match [a-z0-9-]+ and never contain ':', so no course's
# student group equals another course's staff group, and no admin-made group that lacks the
# "course:" prefix is taken for one. The roster, the LMS launch, the template picker, the
# service's authorisation and the admin page all use these two names and nothing else.
COURSE_GROUP_PREFIX = "course:"
STAFF_SUFFIX = ":staff"
ROLE_STUDENT, ROLE_TA, ROLE_INSTRUCTOR = "student", "ta", "instructor"
ROLES = (ROLE_STUDENT, ROLE_TA, ROLE_INSTRUCTOR)
STAFF_ROLES = (ROLE_TA, ROLE_INSTRUCTOR)


def course_group(course: str) -> str:
    """The hub group of a course's enrolled students."""
    return f"{COURSE_GROUP_PREFIX}{course}"


def staff_group(course: str) -> str:
    """The hub group of a course's instructors and teaching assistants."""
    return f"{COURSE_GROUP_PREFIX}{course}{STAFF_SUFFIX}"


def group_for_role(course: str, role: str) -> str:
    return staff_group(course) if role in STAFF_ROLES else course_group(course)


def course_of_group(group: str) -> tuple[str, bool] | None:
    """(course, is_staff) for a course group, None for any other group."""
    if not group.startswith(COURSE_GROUP_PREFIX):
        return None
    rest = group[len(COURSE_GROUP_PREFIX):]
    staff = rest.endswith(STAFF_SUFFIX)
    course = rest[: -len(STAFF_SUFFIX)] if staff else rest
    if not course or ":" in course:
        return None
    return course, staff
