"""Field rules for templates: each parser returns the clean value or raises RuleError saying
what was given and what is allowed. Shared by the YAML loader and the API.

Rules: every pattern is matched whole (re.fullmatch; `$` would accept a trailing newline);
host paths are compared after realpath with os.path.commonpath, never as string prefixes.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from typing import Any
from urllib.parse import urlsplit

from hub_ext import i18n
from hub_ext.i18n.text import LocalText

MAX_GPUS = 16
MAX_CPUS = 256
MIN_MEMORY = 128 * 2**20
MAX_MEMORY = 4 * 2**40
HOME = "/home/jovyan"

# Schemes a courseware repo may use. file:// would read the hub host's disk and
# ext:: runs a command; both are refused, as is anything that looks like an option.
GIT_SCHEMES = ("https", "http", "git", "ssh")

# Host paths a dataset may never come from, whatever the admin's dataset roots are.
FORBIDDEN_SOURCES = ("/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run",
                     "/var/lib/docker", "/home")


class RuleError(ValueError):
    pass


def _given(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise RuleError(f"got {_given(value)}; allowed: 1-40 lowercase letters, digits and '-', "
                        "starting and ending with a letter or digit (e.g. intro-python)")
    return value


def _one_text(value: Any, limit: int, required: bool) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise RuleError(f"got {_given(value)}; allowed: {'non-empty ' if required else ''}text of at most "
                        f"{limit} characters, or one per language: {{en: ..., zh_CN: ...}}")
    return value.strip()


def _local_text(value: Any, limit: int, required: bool) -> str:
    """Text, or a mapping language -> text (en required; languages: hub_ext.i18n.LANGUAGES)
    that pages show in the viewer's language (hub_ext.i18n.text.LocalText)."""
    if not isinstance(value, dict):
        return _one_text(value, limit, required)
    unknown = sorted(str(k) for k in value if k not in i18n.LANGUAGES)
    if unknown or "en" not in value:
        raise RuleError(f"got the languages {', '.join(map(str, value)) or 'none'}; allowed: "
                        f"{', '.join(i18n.LANGUAGES)}, with en always given (e.g. {{en: Intro to Python, "
                        f"zh_CN: Python 入门}})")
    texts = {lang: _one_text(v, limit, required) for lang, v in value.items()}
    return LocalText(texts["en"], {k: v for k, v in texts.items() if k != "en" and v})


def title(value: Any) -> str:
    return _local_text(value, 100, required=True)


def text(value: Any) -> str:
    if value is None:
        return ""
    return _local_text(value, 2000, required=False)


# repository[:tag][@digest], with an optional registry host[:port]/ in front.
IMAGE_RE = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)


def image_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 255 or not IMAGE_RE.fullmatch(value):
        raise RuleError(f"got {_given(value)}; allowed: a Docker image reference such as "
                        "goldenhub/course-intro-python:1.0 (lowercase repository, optional registry and tag, no spaces)")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RuleError(f"got {_given(value)}; allowed: true or false")
    return value


def gpu_count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_GPUS:
        raise RuleError(f"got {_given(value)}; allowed: a whole number from 0 (CPU only) to {MAX_GPUS}")
    return value


def cpu_count(value: Any) -> float:
    if not _number(value) or not 0 < value <= MAX_CPUS:
        raise RuleError(f"got {_given(value)}; allowed: a number of CPUs above 0 and at most {MAX_CPUS} (e.g. 2 or 0.5)")
    return float(value)


SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?", re.IGNORECASE)
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(value: Any, low: int, high: int) -> int:
    allowed = (f"allowed: a size from {format_bytes(low)} to {format_bytes(high)}, "
               "as bytes or with a unit K, M, G or T (e.g. 2G, 512M)")
    if _number(value):
        size = int(value)
    elif isinstance(value, str) and (m := SIZE_RE.fullmatch(value.strip())):
        size = int(float(m.group(1)) * UNITS[m.group(2).upper()])
    else:
        raise RuleError(f"got {_given(value)}; {allowed}")
    if not low <= size <= high:
        raise RuleError(f"got {_given(value)}; {allowed}")
    return size


def memory_size(value: Any) -> int:
    return byte_size(value, MIN_MEMORY, MAX_MEMORY)


def shm_size(value: Any) -> int:
    return byte_size(value, 2**20, MAX_MEMORY)


def format_bytes(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def group_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(g, str) and g.strip() for g in value):
        raise RuleError(f"got {_given(value)}; allowed: a list of JupyterHub group names (empty: the course's members)")
    return tuple(g.strip() for g in value)


ACCESS_MODES = ("enrolled", "everyone")


def access_mode(value: Any) -> str:
    """Who sees a course: its enrolled members, or everyone logged in."""
    if value not in ACCESS_MODES:
        raise RuleError(f"got {_given(value)}; allowed: enrolled (the course's roster or LMS members, "
                        "the default) or everyone (anyone logged in, e.g. a demo course)")
    return value


LMS_CONTEXT_RE = re.compile(r"[\x21-\x7e]{1,255}")  # LTI context ids: opaque, printable, no spaces


def lms_context_list(value: Any) -> tuple[str, ...]:
    """LMS course (LTI context) ids, e.g. [\"42\"] for Moodle course 42: at most 20, each 1-255
    printable ASCII characters without spaces."""
    if not isinstance(value, list) or len(value) > 20:
        raise RuleError(f"got {_given(value)}; expected a list of at most 20 LMS course ids, e.g. [\"42\"]")
    out = []
    for item in value:
        item = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(item, str) or not LMS_CONTEXT_RE.fullmatch(item):
            raise RuleError(f"got {_given(item)}; an LMS course id is 1-255 printable characters without spaces")
        if item in out:
            raise RuleError(f"{item!r} is listed twice")
        out.append(item)
    return tuple(out)


def default_url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"/[A-Za-z0-9/_.\-]*", value) or ".." in value:
        raise RuleError(f"got {_given(value)}; allowed: a path inside the server such as /lab or /lab/tree/README.md")
    return value


def _clean_abs(value: str) -> str:
    path = posixpath.normpath(value)
    return "/" + path.lstrip("/") if path.startswith("/") else path  # POSIX keeps a leading "//"


def is_inside(path: str, parent: str) -> bool:
    """Whether absolute `path` is `parent` or lies under it, by path components."""
    return os.path.commonpath([path, parent]) == os.path.normpath(parent)


def _overlaps(path: str, other: str) -> bool:
    return is_inside(path, other) or is_inside(other, path)


def docker_socket() -> str:
    """The Docker socket this host's clients use (DOCKER_HOST=unix://…, else the default)."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


_REFUSED = (f"dataset sources may not be /, system directories ({', '.join(FORBIDDEN_SOURCES)}), "
            "goldenhub's state directory, the Docker socket, or a socket, device or pipe; "
            "use a data directory such as /srv/datasets/<name>")


def dataset_source(value: Any) -> str:
    """The path as written (normalised, not resolved): absolute, and not a forbidden place by
    its name. resolve_dataset() decides on what it points at."""
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or len(value) > 4096:
        raise RuleError(f"got {_given(value)}; allowed: an absolute host path such as /srv/datasets/mnist")
    path = _clean_abs(value)
    if path == "/" or any(_overlaps(path, bad) for bad in FORBIDDEN_SOURCES) or path.endswith("docker.sock"):
        raise RuleError(f"got {_given(value)}; {_REFUSED}")
    return path


class DatasetMissing(RuleError):
    """The dataset's source (or a link on its way) does not exist on this host."""


def resolve_dataset(value: Any, roots: tuple[str, ...] = (), private: tuple[str, ...] = (),
                    must_exist: bool = False) -> str:
    """The real path a dataset source stands for, after every symlink, or RuleError.

    Rules, on the resolved path: not /, not inside or above a forbidden system directory,
    a private directory (goldenhub's state) or the Docker socket; not itself a socket,
    device or pipe; inside one of `roots` when roots are given (themselves resolved).
    Called at validation and again at every start, since a link can change in between;
    the start binds the resolved path, so a later swap of the link does not matter.
    """
    path = dataset_source(value)
    try:
        real = os.path.realpath(path, strict=must_exist)
    except FileNotFoundError:
        raise DatasetMissing(f"got {_given(value)}, which does not exist on this host") from None
    except OSError as e:  # a loop of links, a path too long, no permission
        raise RuleError(f"got {_given(value)}, which cannot be resolved ({e.strerror}); "
                        "allowed: a directory or file reached without a loop of links") from None
    resolved = "" if real == path else f", which resolves to {real}"
    bad = {*FORBIDDEN_SOURCES, *(os.path.realpath(b) for b in FORBIDDEN_SOURCES),
           os.path.realpath(docker_socket()), *(os.path.realpath(p) for p in private)}
    if real == "/" or any(_overlaps(real, b) for b in bad) or real.endswith("docker.sock"):
        raise RuleError(f"got {_given(value)}{resolved}; {_REFUSED}")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise RuleError(f"got {_given(value)}{resolved}, which cannot be read ({e.strerror})") from None
    if mode is not None and not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise RuleError(f"got {_given(value)}{resolved}, which is a socket, device or pipe; "
                        "allowed: a directory or a regular file")
    if roots:
        real_roots = [os.path.realpath(_clean_abs(r)) for r in roots]
        if not any(is_inside(real, r) for r in real_roots):
            raise RuleError(f"got {_given(value)}{resolved}, which is outside the dataset roots; "
                            f"allowed: paths under {', '.join(roots)}")
    if must_exist and mode is None:
        raise DatasetMissing(f"got {_given(value)}{resolved}, which does not exist on this host")
    return real


def mount_target(value: Any) -> str:
    """A dataset target: relative to the home, or absolute under it; never the home itself."""
    allowed = f"allowed: a directory inside the student's home {HOME}, such as datasets/mnist"
    if not isinstance(value, str) or not value or "\0" in value:
        raise RuleError(f"got {_given(value)}; {allowed}")
    path = _clean_abs(value if value.startswith("/") else f"{HOME}/{value}")
    if not path.startswith(HOME + "/"):
        raise RuleError(f"got {_given(value)}, which is outside the home; {allowed}")
    return path


def home_subdir(value: Any) -> str:
    """A courseware target: a directory relative to the home."""
    allowed = "allowed: a directory name relative to the student's home, such as intro-python"
    if not isinstance(value, str) or not value or value.startswith(("/", "~", "-")) or "\0" in value:
        raise RuleError(f"got {_given(value)}; {allowed}")
    path = posixpath.normpath(value)
    if path in (".", "..") or path.startswith("../") or not re.fullmatch(r"[A-Za-z0-9_./ -]+", path):
        raise RuleError(f"got {_given(value)}; {allowed}")
    return path


def paths_overlap(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def git_url(value: Any, schemes: tuple[str, ...] = GIT_SCHEMES) -> str:
    allowed = f"allowed: a URL with scheme {', '.join(s + '://' for s in schemes)} (e.g. https://example.org/course.git)"
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise RuleError(f"got {_given(value)}; {allowed}")
    shown = _given(mask_url(value))  # messages never repeat a password or token
    if value.startswith("-"):
        raise RuleError(f"got {shown}: a URL may not start with '-' (it would be read as a git option); {allowed}")
    if "::" in value.split("/", 1)[0] or value.lower().startswith("ext::"):
        raise RuleError(f"got {shown}: git transport helpers (ext::, fd::) are not allowed; {allowed}")
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise RuleError(f"got {shown}: spaces and control characters are not allowed; {allowed}")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise RuleError(f"got {shown}, which is not a valid URL; {allowed}") from None
    if parts.scheme.lower() not in schemes or not parts.netloc or parts.netloc.startswith("-"):
        raise RuleError(f"got {shown}; {allowed}")
    # Credentials never live in a template: anyone who may read it would hold them. ssh may
    # name its login user (ssh://git@host/…), never a password.
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo and (":" in userinfo or parts.scheme.lower() != "ssh"):
        raise RuleError(f"got a URL with credentials in it ({shown}); a repository URL may not carry "
                        "a user name, password or token: use a deploy key or a credential setting instead")
    return value


def mask_url(value: str) -> str:
    """The URL with any user name and password replaced by ***, for messages and listings."""
    head, sep, rest = value.partition("://")
    if not sep:
        return value
    netloc, slash, path = rest.partition("/")
    if "@" not in netloc:
        return value
    return f"{head}://***@{netloc.rpartition('@')[2]}{slash}{path}"


def git_branch(value: Any) -> str:
    if (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}", value)
            or ".." in value or value.endswith((".lock", "/", ".")) or "//" in value):
        raise RuleError(f"got {_given(value)}; allowed: a git branch name such as main or spring-2026")
    return value
