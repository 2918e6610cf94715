"""A course layer from declarative files (repo2docker's conventions), never an instructor's Dockerfile.

A course declares its environment in files it owns, in `courses/<id>/environment/` or in its
courseware repo at a git ref (in `binder/`, else `.binder/`, else the repo root):

    requirements.txt   pip requirements, installed as the unprivileged user (uid 1000)
    apt.txt            optional: Debian packages, one per line, installed as root
    postBuild          optional: a script run as uid 1000 after pip; non-zero exit fails the build

goldenhub generates the course layer's Dockerfile on the course's framework image. Rules:
- Order for the cache: apt, then requirements, then postBuild. A requirements-only change
  reuses apt's layer; a change that touches none of the three files (courseware only) reuses
  every RUN layer: only the labels (added after the last step) differ.
- The files are hostile input. Only these three regular files are read, never through a
  symbolic link, each at most MAX_FILE_BYTES; an apt line must full-match a Debian package
  name (optionally =version), at most MAX_APT_PACKAGES; `-r`/`-c` includes are refused (only
  the three files reach the build context). Packages are inlined in the RUN line only after
  validation, so nothing an instructor writes runs as root.
- Every refusal is an EnvError naming the file, the line, what was wrong and what is allowed.
- Arbitrary Dockerfiles stay admin-only, in images/frameworks/.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hub_ext.i18n import _
from hub_ext.images import plan as images

REQUIREMENTS, APT, POST_BUILD = "requirements.txt", "apt.txt", "postBuild"
ENV_FILES = (APT, REQUIREMENTS, POST_BUILD)
# repo2docker's order: the first of these that is a directory holds the files; else the root.
CHECKOUT_DIRS = ("binder", ".binder")
MAX_FILE_BYTES = 64 * 1024
MAX_APT_PACKAGES = 200
CLONE_TIMEOUT_S = 120
# Where the generated layer puts the files while it builds (inside the image, owned by uid 1000).
ENV_DIR_IN_IMAGE = "/tmp/goldenhub-env"
# The host name containers use for the host; on the host it is the students' network gateway.
CONTAINER_HOST_NAME = "host.docker.internal"

_APT_LINE = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]{1,100})?")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_INCLUDE = re.compile(r"(?:-r|-c|--requirement|--constraint)(?:[\s=]|$)")
# Failure markers the generated RUN lines print, so a failure can be explained in one sentence.
PIP_FAILED = "goldenhub: pip install exited with status"
POST_BUILD_FAILED = "goldenhub: postBuild exited with status"
POST_BUILD_TAIL_LINES = 15


class EnvError(images.ImagesError):
    """A course's environment files (or its courseware ref) are refused; str() says which file,
    which line, what was wrong and what is allowed."""

    def __init__(self, message: str, file: str = "", line: int = 0):
        self.file, self.line = file, line
        super().__init__(message)


@dataclass(frozen=True)
class EnvFiles:
    """The validated content of a course's environment files and where they come from.
    `requirements` is the file's text, `apt` the package specs, `post_build` the script (None:
    no postBuild); `source` the env directory relative to its repo or the courseware URL,
    `commit` the commit the files were read at, `ref` the ref that was asked for.
    `provenance` (when known) is the git provenance the image's OCI labels take."""

    requirements: str
    apt: tuple[str, ...]
    post_build: bytes | None
    source: str
    commit: str
    ref: str
    provenance: images.Provenance | None = None


# --- reading and validating --------------------------------------------------------------

def _read_file(directory: Path, name: str) -> bytes | None:
    """The bytes of directory/name (None when absent); never through a link, never unbounded."""
    path = directory / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise EnvError(_("%(file)s is a symbolic link; allowed: a regular file in the environment directory "
                         "(links are never followed)", file=name), name)
    if not stat.S_ISREG(info.st_mode):
        raise EnvError(_("%(file)s is not a regular file; allowed: a regular file of at most %(limit)d KiB",
                         file=name, limit=MAX_FILE_BYTES // 1024), name)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise EnvError(_("%(file)s is larger than %(limit)d KiB; allowed: at most %(limit)d KiB",
                         file=name, limit=MAX_FILE_BYTES // 1024), name)
    return data


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise EnvError(_("%(file)s line %(line)d is not UTF-8 text; allowed: a UTF-8 text file",
                         file=name, line=line), name, line) from None


def parse_apt(text: str) -> tuple[str, ...]:
    """The package specs of an apt.txt; '#' starts a comment, blank lines are ignored."""
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _APT_LINE.fullmatch(line):
            shown = line if len(line) <= 80 else line[:80] + "…"
            raise EnvError(_("apt.txt line %(line)d: %(value)r is not a Debian package name; allowed: one package "
                             "per line (lower-case letters, digits, '+', '-' and '.'), optionally =VERSION, "
                             "'#' starts a comment", line=number, value=shown), APT, number)
        packages.append(line)
        if len(packages) > MAX_APT_PACKAGES:
            raise EnvError(_("apt.txt line %(line)d: more than %(limit)d packages; allowed: at most %(limit)d",
                             line=number, limit=MAX_APT_PACKAGES), APT, number)
    return tuple(packages)


def check_requirements(text: str) -> str:
    """requirements.txt as pip reads it, refusing includes of files that never reach the build."""
    for number, raw in enumerate(text.splitlines(), 1):
        if _INCLUDE.match(raw.strip()):
            raise EnvError(_("requirements.txt line %(line)d: includes another file (-r/-c); allowed: requirements "
                             "and pip options in requirements.txt itself, since only requirements.txt, apt.txt "
                             "and postBuild are copied into the build", line=number), REQUIREMENTS, number)
    return text


def read_env_dir(directory: Path, source: str = "", commit: str = "", ref: str = "") -> EnvFiles:
    """The validated environment files of `directory` (each optional); EnvError on bad files."""
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        raise EnvError(_("%(directory)s is not a directory; allowed: a directory holding requirements.txt and "
                         "optionally apt.txt and postBuild", directory=source or directory))
    requirements = _read_file(directory, REQUIREMENTS)
    apt = _read_file(directory, APT)
    post_build = _read_file(directory, POST_BUILD)
    return EnvFiles(
        requirements=check_requirements(_text(requirements, REQUIREMENTS)) if requirements is not None else "",
        apt=parse_apt(_text(apt, APT)) if apt is not None else (),
        post_build=post_build, source=source, commit=commit, ref=ref,
    )


def local_env(directory: Path) -> EnvFiles:
    """The environment of a file-based course (courses/<id>/environment/) with the git
    provenance of that directory (see plan.git_provenance)."""
    provenance = images.git_provenance(directory)
    source = _relative_source(Path(directory))
    try:
        env = read_env_dir(directory, source=source, commit=provenance.revision, ref="")
    except EnvError as exc:  # name the course's directory: a build may read several
        raise EnvError(f"{source}: {exc}", exc.file, exc.line) from None
    return _with_provenance(env, provenance)


def _relative_source(directory: Path) -> str:
    directory = directory.resolve()
    try:
        top = subprocess.run(["git", "-C", str(directory), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30)
        if top.returncode == 0:
            return str(directory.relative_to(Path(top.stdout.strip())))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return str(directory)


def _with_provenance(env: EnvFiles, provenance: images.Provenance) -> EnvFiles:
    return replace(env, provenance=provenance)


def requirements_digest(env: EnvFiles) -> str:
    """"sha256:<hex>" of the three files with their names: changes exactly when what the layer
    installs changes (apt.txt as its package list, so a comment does not count; an absent
    file counts as empty)."""
    digest = hashlib.sha256()
    contents = {APT: "\n".join(env.apt).encode(), REQUIREMENTS: env.requirements.encode(),
                POST_BUILD: env.post_build or b""}
    for name in ENV_FILES:
        data = contents[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()


# --- the generated Dockerfile ------------------------------------------------------------

def make_dockerfile(env: EnvFiles) -> str:
    """The course layer's Dockerfile: FROM the framework (ARG FRAMEWORK_IMAGE), apt as root,
    then pip and postBuild as uid 1000; steps for absent files are left out."""
    lines = [
        "# Generated by goldenhub from the course's environment files (requirements.txt, apt.txt, postBuild).",
        "ARG FRAMEWORK_IMAGE",
        "FROM ${FRAMEWORK_IMAGE}",
    ]
    if env.apt:
        packages = " ".join(shlex.quote(p) for p in env.apt)
        lines += [
            "USER root",
            "RUN apt-get update \\\n"
            f"    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\\n"
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    lines.append("USER 1000")
    # 2>&1: Docker delivers a step's stderr on its own stream, possibly after the status line
    # echoed below; one stream keeps the failing lines before it, where explain_failure looks.
    if env.requirements.strip():
        lines += [
            f"COPY --chown=1000:100 {REQUIREMENTS} {ENV_DIR_IN_IMAGE}/{REQUIREMENTS}",
            f"RUN pip install --no-cache-dir -r {ENV_DIR_IN_IMAGE}/{REQUIREMENTS} 2>&1 "
            f"|| {{ status=$?; echo \"{PIP_FAILED} $status\"; exit $status; }}",
        ]
    if env.post_build is not None:
        lines += [
            f"COPY --chown=1000:100 {POST_BUILD} {ENV_DIR_IN_IMAGE}/{POST_BUILD}",
            f"RUN chmod 0755 {ENV_DIR_IN_IMAGE}/{POST_BUILD} && {ENV_DIR_IN_IMAGE}/{POST_BUILD} 2>&1 "
            f"|| {{ status=$?; echo \"{POST_BUILD_FAILED} $status\"; exit $status; }}",
        ]
    return "\n".join(lines) + "\n"


def make_context(env: EnvFiles, directory: Path) -> Path:
    """Write the build context into `directory`: the Dockerfile and the env files it copies,
    with fixed modes and times, so only their contents decide Docker's cache."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"Dockerfile": make_dockerfile(env).encode()}
    if env.requirements.strip():
        files[REQUIREMENTS] = env.requirements.encode()
    if env.post_build is not None:
        files[POST_BUILD] = env.post_build
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)
        os.utime(path, (0, 0))
    return directory


def explain_failure(output: str) -> str:
    """The sentence after "failed:" for a failed course layer build: pip's ERROR lines, or
    postBuild's exit status and last lines, else the last lines of the output."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith(POST_BUILD_FAILED):
            status = line[len(POST_BUILD_FAILED):].strip()
            start = max((i for i in range(index) if lines[i].startswith("Step ")), default=-1) + 1
            tail = [l for l in lines[start:index] if not l.startswith(" ---> ")][-POST_BUILD_TAIL_LINES:]
            return _("postBuild exited with status %(status)s; its last lines:", status=status) + \
                "".join(f"\n  {l}" for l in tail)
        if line.startswith(PIP_FAILED):
            errors = [l for l in lines[:index] if l.startswith("ERROR:")]
            status = line[len(PIP_FAILED):].strip()
            return (_("pip install -r requirements.txt exited with status %(status)s:", status=status)
                    + "".join(f"\n  {l}" for l in errors[-10:] or lines[max(0, index - 10):index]))
    return "\n".join(lines[-10:])


# --- courseware repos ----------------------------------------------------------------------

def strip_credentials(url: str) -> str:
    """The URL without user name or password (labels and messages never carry them)."""
    parts = urlsplit(url)
    if parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def host_url(url: str, gateway: str) -> str:
    """The courseware URL as the host reaches it: host.docker.internal (the containers' name
    for the host) becomes `gateway`, where `goldenhub prepare`'s git daemon listens."""
    parts = urlsplit(url)
    if gateway and (parts.hostname or "").lower() == CONTAINER_HOST_NAME:
        user = parts.netloc.rpartition("@")[0]
        netloc = (f"{user}@" if user else "") + gateway + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_ref(ref: str) -> str:
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref:
        shown = ref[:80] if isinstance(ref, str) else repr(ref)
        raise EnvError(_("%(ref)r is not a git ref; allowed: a branch, tag or commit of at most 200 characters: "
                         "letters, digits, '.', '_', '/' and '-', starting with a letter or digit, without '..'",
                         ref=shown))
    return ref


class _GitFailed(Exception):
    def __init__(self, detail: str, timed_out: bool = False):
        self.detail, self.timed_out = detail, timed_out
        super().__init__(detail)


def _git(args: list[str], cwd: Path, timeout: int = CLONE_TIMEOUT_S) -> str:
    """git's stdout; _GitFailed (git's last error line, or the timeout) otherwise. Never prompts."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise _GitFailed("", timed_out=True) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise _GitFailed(" ".join(lines[-3:])[:500] or f"exit status {result.returncode}")
    return result.stdout.strip()


def checkout_courseware(url: str, ref: str, work_dir: Path, gateway: str) -> tuple[Path, str]:
    """A checkout of the courseware repo at `ref` in a new directory under `work_dir`, and the
    commit's sha. EnvError on a bad URL or ref, an unreachable repo or a clone over CLONE_TIMEOUT_S."""
    from hub_ext.catalog import rules

    try:
        rules.git_url(url)
    except rules.RuleError as exc:
        raise EnvError(_("courseware repository: %(problem)s", problem=str(exc))) from None
    check_ref(ref)
    shown = rules.mask_url(url)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix="courseware-", dir=work_dir))
    try:
        return checkout, _fetch_and_check_out(url, ref, checkout, gateway, shown)
    except BaseException:
        shutil.rmtree(checkout, ignore_errors=True)
        raise


def _fetch_and_check_out(url: str, ref: str, checkout: Path, gateway: str, shown: str) -> str:
    try:
        _git(["init", "-q", str(checkout)], checkout.parent, 30)
        # Every branch and tag, so REF may name any of them or a commit they reach.
        _git(["-c", "protocol.file.allow=never", "fetch", "--quiet", "--tags", "--update-head-ok",
              "--no-recurse-submodules", "--", host_url(url, gateway), "+refs/heads/*:refs/heads/*"], checkout)
    except _GitFailed as exc:
        if exc.timed_out:
            raise EnvError(_("fetching %(url)s took longer than %(seconds)d s; check that the repository is "
                             "reachable from this host", url=shown, seconds=CLONE_TIMEOUT_S)) from None
        raise EnvError(_("fetching %(url)s failed: %(detail)s", url=shown, detail=exc.detail)) from None
    try:
        commit = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], checkout, 30)
        _git(["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit], checkout, 60)
    except _GitFailed:
        raise EnvError(_("no branch, tag or commit %(ref)s in %(url)s", ref=ref, url=shown)) from None
    return commit


def env_from_checkout(checkout: Path, url: str, commit: str, ref: str) -> EnvFiles:
    """The environment files of a courseware checkout: in binder/, else .binder/, else the root
    (repo2docker's order), never from outside the checkout."""
    checkout = Path(checkout).resolve()
    directory = checkout
    for name in CHECKOUT_DIRS:
        candidate = checkout / name
        if candidate.is_symlink():
            raise EnvError(_("%(file)s is a symbolic link; allowed: a directory in the repository "
                             "(links are never followed)", file=name), name)
        if candidate.is_dir():
            directory = candidate
            break
    created, version = "", "0.0.0-dirty"
    if commit:
        try:
            created = _git(["log", "-1", "--format=%cI", commit], checkout, 30)
            version = re.sub(r"[^A-Za-z0-9_.-]", "-", _git(["describe", "--tags", "--always", commit], checkout, 30))
        except _GitFailed as exc:
            raise EnvError(_("reading commit %(commit)s of the checkout failed: %(detail)s", commit=commit,
                             detail=exc.detail or "timeout")) from None
    source = strip_credentials(url)
    provenance = images.Provenance(commit, created, version, source, dirty=not commit)
    return _with_provenance(read_env_dir(directory, source=source, commit=commit, ref=ref), provenance)
