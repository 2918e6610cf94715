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
from hub_ext.catalog import nfs
from hub_ext.i18n import _
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
    if value is None:  # YAML's null, or a field left empty: not Python's None to a reader
        return _("nothing")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any, allowed: str) -> RuleError:
    """The error "got <value>; <what is allowed>" in the reader's language."""
    return RuleError(_("got %(value)s; %(allowed)s", value=_given(value), allowed=allowed))


ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise _got(value, _("allowed: 1-40 lowercase letters, digits and '-', starting and ending with a letter or "
                            "digit (e.g. intro-python)"))
    return value


def _one_text(value: Any, limit: int, required: bool) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise _got(value, _("allowed: non-empty text of at most %(limit)d characters, or one per language: "
                            "{en: ..., zh_CN: ...}", limit=limit) if required else
                   _("allowed: text of at most %(limit)d characters, or one per language: {en: ..., zh_CN: ...}",
                     limit=limit))
    return value.strip()


def _local_text(value: Any, limit: int, required: bool) -> str:
    """Text, or a mapping language -> text (en required; languages: hub_ext.i18n.LANGUAGES)
    that pages show in the viewer's language (hub_ext.i18n.text.LocalText)."""
    if not isinstance(value, dict):
        return _one_text(value, limit, required)
    unknown = sorted(str(k) for k in value if k not in i18n.LANGUAGES)
    if unknown or "en" not in value:
        raise RuleError(_("got the languages %(given)s; allowed: %(languages)s, with en always given (e.g. "
                          "{en: Intro to Python, zh_CN: Python 入门})", given=", ".join(map(str, value)) or _("none"),
                          languages=", ".join(i18n.LANGUAGES)))
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
        raise _got(value, _("allowed: a Docker image reference such as goldenhub/course-intro-python:1.0 "
                            "(lowercase repository, optional registry and tag, no spaces)"))
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _got(value, _("allowed: true or false"))
    return value


def gpu_count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_GPUS:
        raise _got(value, _("allowed: a whole number from 0 (CPU only) to %(most)d", most=MAX_GPUS))
    return value


def cpu_count(value: Any) -> float:
    if not _number(value) or not 0 < value <= MAX_CPUS:
        raise _got(value, _("allowed: a number of CPUs above 0 and at most %(most)d (e.g. 2 or 0.5)", most=MAX_CPUS))
    return float(value)


SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?", re.IGNORECASE)
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(value: Any, low: int, high: int) -> int:
    allowed = _("allowed: a size from %(low)s to %(high)s, as bytes or with a unit K, M, G or T (e.g. 2G, 512M)",
                low=format_bytes(low), high=format_bytes(high))
    if _number(value):
        size = int(value)
    elif isinstance(value, str) and (m := SIZE_RE.fullmatch(value.strip())):
        size = int(float(m.group(1)) * UNITS[m.group(2).upper()])
    else:
        raise _got(value, allowed)
    if not low <= size <= high:
        raise _got(value, allowed)
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
        raise _got(value, _("allowed: a list of JupyterHub group names (empty: the course's members)"))
    return tuple(g.strip() for g in value)


ACCESS_MODES = ("enrolled", "everyone")


def access_mode(value: Any) -> str:
    """Who sees a course: its enrolled members, or everyone logged in."""
    if value not in ACCESS_MODES:
        raise _got(value, _("allowed: enrolled (the course's roster or LMS members, the default) or everyone "
                            "(anyone logged in, e.g. a demo course)"))
    return value


LMS_CONTEXT_RE = re.compile(r"[\x21-\x7e]{1,255}")  # LTI context ids: opaque, printable, no spaces


def lms_context_list(value: Any) -> tuple[str, ...]:
    """LMS course (LTI context) ids, e.g. [\"42\"] for Moodle course 42: at most 20, each 1-255
    printable ASCII characters without spaces."""
    if not isinstance(value, list) or len(value) > 20:
        raise _got(value, _("expected a list of at most 20 LMS course ids, e.g. [\"42\"]"))
    out = []
    for item in value:
        item = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(item, str) or not LMS_CONTEXT_RE.fullmatch(item):
            raise _got(item, _("an LMS course id is 1-255 printable characters without spaces"))
        if item in out:
            raise RuleError(_("%(item)s is listed twice", item=repr(item)))
        out.append(item)
    return tuple(out)


# The pages a server may open on (default_url), matched whole: JupyterLab, a file or folder
# of the home in JupyterLab (no "..", no "//", no "."-only part), VS Code or TensorBoard (the
# images' jupyter-server-proxy apps). At most 200 characters.
DEFAULT_URL_RE = re.compile(
    r"/lab(?:/tree(?:/(?!\.{1,2}(?:/|$))[A-Za-z0-9_.\-]+)*)?"
    r"|/vscode/?|/tensorboard/?"
)


def default_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200 or not DEFAULT_URL_RE.fullmatch(value):
        raise _got(value, _("allowed: /lab, /lab/tree/<a file or folder in the home> such as "
                            "/lab/tree/README.md, /vscode (VS Code) or /tensorboard (TensorBoard)"))
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


def _refused() -> str:
    return _("dataset sources may not be /, system directories (%(system)s), goldenhub's state directory, the "
             "Docker socket, or a socket, device or pipe; use a data directory such as /srv/datasets/<name>",
             system=", ".join(FORBIDDEN_SOURCES))


def dataset_source(value: Any) -> str:
    """The path as written (normalised, not resolved): absolute, and not a forbidden place by
    its name. resolve_dataset() decides on what it points at. `nfs://server/export/path` is an
    NFS export (hub_ext.catalog.nfs), returned in its normal form."""
    if nfs.is_nfs(value):
        try:
            return nfs.parse(value).url
        except nfs.NfsError:
            raise _got(value, _("allowed: nfs://SERVER/EXPORT/PATH with a hostname or IP address and an absolute "
                                "path of letters, digits and . _ ~ + @ - (no '..', at most %(limit)d characters), "
                                "such as nfs://nfs.example.edu/export/datasets/mnist",
                                limit=nfs.MAX_PATH)) from None
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or len(value) > 4096:
        raise _got(value, _("allowed: an absolute host path such as /srv/datasets/mnist, or an NFS export such as "
                            "nfs://nfs.example.edu/export/datasets/mnist"))
    path = _clean_abs(value)
    if path == "/" or any(_overlaps(path, bad) for bad in FORBIDDEN_SOURCES) or path.endswith("docker.sock"):
        raise _got(value, _refused())
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
    if nfs.is_nfs(path):  # nothing on this host to resolve; an API template's must lie under an nfs:// root
        return _nfs_under_roots(path, roots)
    try:
        real = os.path.realpath(path, strict=must_exist)
    except FileNotFoundError:
        raise DatasetMissing(_("got %(value)s, which does not exist on this host", value=_given(value))) from None
    except OSError as e:  # a loop of links, a path too long, no permission
        raise RuleError(_("got %(value)s, which cannot be resolved (%(error)s); allowed: a directory or file reached "
                          "without a loop of links", value=_given(value), error=e.strerror)) from None
    given = _given(value) if real == path else _("%(value)s, which resolves to %(real)s", value=_given(value),
                                                   real=real)
    bad = {*FORBIDDEN_SOURCES, *(os.path.realpath(b) for b in FORBIDDEN_SOURCES),
           os.path.realpath(docker_socket()), *(os.path.realpath(p) for p in private)}
    if real == "/" or any(_overlaps(real, b) for b in bad) or real.endswith("docker.sock"):
        raise RuleError(_("got %(value)s; %(allowed)s", value=given, allowed=_refused()))
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise RuleError(_("got %(value)s, which cannot be read (%(error)s)", value=given, error=e.strerror)) from None
    if mode is not None and not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise RuleError(_("got %(value)s, which is a socket, device or pipe; allowed: a directory or a regular file",
                          value=given))
    if roots:
        real_roots = [os.path.realpath(_clean_abs(r)) for r in roots if not nfs.is_nfs(r)]
        if not any(is_inside(real, r) for r in real_roots):
            raise RuleError(_("got %(value)s, which is outside the dataset roots; allowed: paths under %(roots)s",
                              value=given, roots=", ".join(roots)))
    if must_exist and mode is None:
        raise DatasetMissing(_("got %(value)s, which does not exist on this host", value=given))
    return real


def _nfs_under_roots(url: str, roots: tuple[str, ...]) -> str:
    source = nfs.parse(url)
    nfs_roots = [nfs.parse(r) for r in roots if nfs.is_nfs(r)]
    if roots and not any(r.server == source.server and is_inside(source.path, r.path) for r in nfs_roots):
        raise RuleError(_("got %(value)s, which is outside the dataset roots; allowed: paths under %(roots)s",
                          value=_given(url), roots=", ".join(roots)))
    return url


def mount_target(value: Any) -> str:
    """A dataset target: relative to the home, or absolute under it; never the home itself."""
    allowed = _("allowed: a directory inside the student's home %(home)s, such as datasets/mnist", home=HOME)
    if not isinstance(value, str) or not value or "\0" in value:
        raise _got(value, allowed)
    path = _clean_abs(value if value.startswith("/") else f"{HOME}/{value}")
    if not path.startswith(HOME + "/"):
        raise RuleError(_("got %(value)s, which is outside the home; %(allowed)s", value=_given(value),
                          allowed=allowed))
    return path


def home_subdir(value: Any) -> str:
    """A courseware target: a directory relative to the home."""
    allowed = _("allowed: a directory name relative to the student's home, such as intro-python")
    if not isinstance(value, str) or not value or value.startswith(("/", "~", "-")) or "\0" in value:
        raise _got(value, allowed)
    path = posixpath.normpath(value)
    if path in (".", "..") or path.startswith("../") or not re.fullmatch(r"[A-Za-z0-9_./ -]+", path):
        raise _got(value, allowed)
    return path


def paths_overlap(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def git_url(value: Any, schemes: tuple[str, ...] = GIT_SCHEMES) -> str:
    allowed = _("allowed: a URL with scheme %(schemes)s (e.g. https://example.org/course.git)",
                schemes=", ".join(s + "://" for s in schemes))
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise _got(value, allowed)
    shown = _given(mask_url(value))  # messages never repeat a password or token
    if value.startswith("-"):
        raise RuleError(_("got %(value)s: a URL may not start with '-' (it would be read as a git option); "
                          "%(allowed)s", value=shown, allowed=allowed))
    if "::" in value.split("/", 1)[0] or value.lower().startswith("ext::"):
        raise RuleError(_("got %(value)s: git transport helpers (ext::, fd::) are not allowed; %(allowed)s",
                          value=shown, allowed=allowed))
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise RuleError(_("got %(value)s: spaces and control characters are not allowed; %(allowed)s", value=shown,
                          allowed=allowed))
    try:
        parts = urlsplit(value)
    except ValueError:
        raise RuleError(_("got %(value)s, which is not a valid URL; %(allowed)s", value=shown,
                          allowed=allowed)) from None
    if parts.scheme.lower() not in schemes or not parts.netloc or parts.netloc.startswith("-"):
        raise RuleError(_("got %(value)s; %(allowed)s", value=shown, allowed=allowed))
    # Credentials never live in a template: anyone who may read it would hold them. ssh may
    # name its login user (ssh://git@host/…), never a password.
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo and (":" in userinfo or parts.scheme.lower() != "ssh"):
        raise RuleError(_("got a URL with credentials in it (%(value)s); a repository URL may not carry a user name, "
                          "password or token: use a deploy key or a credential setting instead", value=shown))
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
        raise _got(value, _("allowed: a git branch name such as main or spring-2026"))
    return value
