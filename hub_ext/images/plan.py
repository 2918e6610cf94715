"""Golden images as plain data: which layers to build, their names, tags, labels and provenance.

A golden image is built in three layers:

    images/base/                      goldenhub/base                 (OS, Python, jupyterhub, JupyterLab)
    images/frameworks/<name>/         goldenhub/framework-<name>     (FROM the base, ARG BASE)
    courses/<course-id>/environment/  goldenhub/course-<course-id>   (FROM its framework, ARG FRAMEWORK_IMAGE)

The base and framework layers are admin-owned Dockerfiles. A course layer has no Dockerfile:
it is generated from the course's requirements.txt, apt.txt and postBuild (hub_ext.images.course_env).

Nothing here talks to Docker (that is hub_ext.images.build); git is read for provenance.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from hub_ext import contract

IMAGE_NAMESPACE = "goldenhub"
# A framework directory holding this file is only built on a CUDA base image.
REQUIRES_CUDA_MARKER = "requires-cuda"
# The framework a requires-cuda framework is replaced by when the base has no CUDA.
CPU_FALLBACK_FRAMEWORK = "scipy"
LAYER_KINDS = ("base", "framework", "course")
_NAME_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[a-z0-9._-]+)*")


class ImagesError(ValueError):
    """A golden-image build cannot be planned or run; the message says what to change."""


@dataclass(frozen=True)
class Layer:
    """One image to build: its directory, what it builds on, and what it is for."""

    kind: str  # base | framework | course
    name: str  # "base", the framework name, or the course id
    directory: Path
    parent: str | None = None  # repository of the image it is built FROM (None: the OS base)
    framework: str | None = None  # the framework actually used (framework and course layers)
    requested_framework: str | None = None  # the course's framework when it was substituted
    course_title: str = ""
    templates: tuple[str, ...] = ()
    requires_cuda: bool = False
    namespace: str = IMAGE_NAMESPACE

    @property
    def repository(self) -> str:
        return make_repository(self.kind, self.name, self.namespace)


@dataclass
class BuildPlan:
    """The layers to build, parents first, and what the user should be told about the choices."""

    layers: list[Layer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Provenance:
    """Where a layer's content comes from, derived only from git and the layer's files."""

    revision: str  # the last commit touching the layer directory ("" when none)
    created: str  # ISO 8601
    version: str  # usable as a Docker tag
    source: str  # the repository the layer comes from
    dirty: bool = False


def make_repository(kind: str, name: str, namespace: str = IMAGE_NAMESPACE) -> str:
    """goldenhub/base, goldenhub/framework-<name> or goldenhub/course-<name>."""
    if kind not in LAYER_KINDS:
        raise ImagesError(f"unknown layer kind {kind!r}; allowed: {', '.join(LAYER_KINDS)}")
    component = "base" if kind == "base" else f"{kind}-{name}"
    for part, what in ((component, repr(name)), (namespace, f"namespace {namespace!r}")):
        if not _NAME_COMPONENT.fullmatch(part):
            raise ImagesError(
                f"{what} cannot be part of a Docker image name; use lower-case letters, digits, '-', '_' and '.'"
            )
    return f"{namespace}/{component}"


def make_tags(repository: str, version: str) -> list[str]:
    """The references an image gets: its version and `latest`."""
    if not _TAG.fullmatch(version):
        raise ImagesError(f"{version!r} is not a valid Docker tag")
    return [f"{repository}:{version}", f"{repository}:latest"]


def make_push_repository(registry: str, repository: str) -> str:
    """REGISTRY/goldenhub/<name>; REGISTRY is host[:port][/path], without a scheme."""
    registry = registry.rstrip("/")
    if "://" in registry or not _REGISTRY.fullmatch(registry):
        raise ImagesError(
            f"--push {registry!r}: give a registry as host[:port] or host[:port]/path, without http:// "
            "(for example 127.0.0.1:5000)"
        )
    return f"{registry}/{repository}"


def make_run_command(reference: str, requires_cuda: bool) -> str:
    """The recommended `docker run` line for trying an image outside the hub."""
    gpus = "--gpus device=0 " if requires_cuda else ""
    return f"docker run --rm -it -p 8888:8888 {gpus}{reference} jupyter lab --ip=0.0.0.0 --no-browser"


def make_labels(layer: Layer, provenance: Provenance, env=None, parents: tuple[str, str] = ("", "")) -> dict[str, str]:
    """The labels of one image, a pure function of the layer and its provenance; a course layer
    also names its environment files (`env`, a course_env.EnvFiles) and its exact parents
    (`parents`: the base's and the framework's "name:version").

    Labels are part of the image id, and a changed parent id rebuilds every child, so no
    label may depend on when or where the build ran: see git_provenance for the rule.
    """
    if layer.kind == "base":
        title = "goldenhub base"
    elif layer.kind == "framework":
        title = f"goldenhub framework {layer.name}"
    else:
        title = layer.course_title or f"goldenhub course {layer.name}"
    labels = {
        "org.opencontainers.image.created": provenance.created,
        "org.opencontainers.image.revision": provenance.revision or "unknown",
        "org.opencontainers.image.source": provenance.source,
        "org.opencontainers.image.version": provenance.version,
        "org.opencontainers.image.title": title,
        contract.LABEL_IMAGE_LAYER: layer.kind,
        contract.LABEL_IMAGE_FRAMEWORK: layer.framework or "none",
        contract.LABEL_IMAGE_RUN: make_run_command(f"{layer.repository}:{provenance.version}", layer.requires_cuda),
    }
    if layer.kind == "course":
        labels[contract.LABEL_COURSE] = layer.name
        labels[contract.LABEL_IMAGE_TEMPLATES] = ",".join(layer.templates)
        if env is not None:
            from hub_ext.images.course_env import requirements_digest

            labels[contract.LABEL_ENV_SOURCE] = env.source
            labels[contract.LABEL_ENV_COMMIT] = env.commit or "none"
            labels[contract.LABEL_ENV_REF] = env.ref or "none"
            labels[contract.LABEL_REQUIREMENTS] = requirements_digest(env)
            labels[contract.LABEL_BASE_IMAGE], labels[contract.LABEL_FRAMEWORK_IMAGE] = parents
    if layer.requested_framework:
        labels[contract.LABEL_IMAGE_FRAMEWORK_REQUESTED] = layer.requested_framework
    return labels


def plan_chain(courses: Iterable, images_dir: Path, cuda_base: bool, namespace: str = IMAGE_NAMESPACE,
               courses_dir: Path | None = None, require_env: bool = True) -> BuildPlan:
    """The layers that build the given courses, parents first, each layer once.

    `courses` are catalog Course objects (id, title, framework, templates). A course whose
    framework is None gets no image. A framework marked requires-cuda is replaced by the
    CPU fallback framework when the base has no CUDA (`cuda_base` false). A course layer's
    directory is courses_dir/<id>/environment (courses_dir default: courses/ next to
    images_dir); `require_env` false lets its files come from elsewhere (a courseware repo).
    """
    images_dir = Path(images_dir)
    courses_dir = Path(courses_dir) if courses_dir else images_dir.parent / "courses"
    plan = BuildPlan()
    base = Layer("base", "base", images_dir / "base", namespace=namespace)
    _require_dockerfile(base.directory, "the base layer")
    plan.layers.append(base)
    frameworks: dict[str, Layer] = {}
    course_layers: list[Layer] = []
    for course in courses:
        if course.framework is None:
            plan.notes.append(f"{course.id}: no framework in its course file; no image built")
            continue
        framework = course.framework
        requested = None
        if _requires_cuda(images_dir, framework) and not cuda_base:
            plan.notes.append(
                f"{course.id}: framework {framework} needs a CUDA base; built on {CPU_FALLBACK_FRAMEWORK} instead"
            )
            requested, framework = framework, CPU_FALLBACK_FRAMEWORK
        if framework not in frameworks:
            directory = images_dir / "frameworks" / framework
            available = ", ".join(sorted(p.parent.name for p in (images_dir / "frameworks").glob("*/Dockerfile")))
            _require_dockerfile(
                directory, f"framework {framework!r} (used by course {course.id}; available: {available or 'none'})"
            )
            frameworks[framework] = Layer(
                "framework", framework, directory, parent=base.repository, framework=framework,
                requires_cuda=_requires_cuda(images_dir, framework), namespace=namespace,
            )
        course_dir = environment_dir(courses_dir, course.id)
        if require_env and not course_dir.is_dir():
            raise ImagesError(
                f"the course layer of {course.id}: {course_dir} does not exist; create it with a requirements.txt "
                "(and optionally apt.txt and postBuild)"
            )
        course_layers.append(Layer(
            "course", course.id, course_dir, parent=frameworks[framework].repository, framework=framework,
            requested_framework=requested, course_title=course.title,
            templates=tuple(t.id for t in course.templates), requires_cuda=frameworks[framework].requires_cuda,
            namespace=namespace,
        ))
    plan.layers.extend(frameworks.values())
    plan.layers.extend(course_layers)
    return plan


def select_courses(catalog_courses: dict, wanted: list[str] | None) -> list:
    """The catalog courses named by --course (all when none), in the order given."""
    if not wanted:
        return list(catalog_courses.values())
    unknown = [c for c in wanted if c not in catalog_courses]
    if unknown:
        raise ImagesError(
            f"no such course: {', '.join(unknown)}. Courses in the catalog: {', '.join(catalog_courses) or 'none'}"
        )
    return [catalog_courses[c] for c in dict.fromkeys(wanted)]


def environment_dir(courses_dir: Path, course_id: str) -> Path:
    """Where a file-based course declares its environment: courses/<id>/environment/."""
    return Path(courses_dir) / course_id / "environment"


def _requires_cuda(images_dir: Path, framework: str) -> bool:
    return (images_dir / "frameworks" / framework / REQUIRES_CUDA_MARKER).exists()


def _require_dockerfile(directory: Path, what: str) -> None:
    if not (directory / "Dockerfile").is_file():
        raise ImagesError(f"{what}: {directory / 'Dockerfile'} does not exist")


def dockerfile_arg_default(dockerfile: Path, name: str) -> str | None:
    """The default of `ARG <name>=<default>` in a Dockerfile, or None."""
    pattern = re.compile(rf"\s*ARG\s+{re.escape(name)}=(\S+)\s*", re.IGNORECASE)
    for line in Path(dockerfile).read_text(encoding="utf-8").splitlines():
        match = pattern.fullmatch(line)
        if match:
            return match.group(1).strip("\"'")
    return None


# --- provenance from git ------------------------------------------------------------------

def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, ["git", *args], result.stdout, result.stderr)
    return result.stdout.strip()


def _strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def _working_tree_time(directory: Path) -> str:
    newest = max((p.stat().st_mtime for p in directory.rglob("*") if p.is_file()), default=0.0)
    return datetime.fromtimestamp(int(newest), timezone.utc).isoformat()


def git_provenance(directory: Path) -> Provenance:
    """The provenance labels of a layer directory.

    Rule (keeps Docker's cache working, since labels are part of the image id): labels
    depend only on the layer's own files, never on the clock or the build host's state.
      revision = the last commit touching the directory (`git log -1 --format=%H -- <dir>`)
      created  = that commit's committer date (ISO 8601)
      version  = `git describe --tags --always <revision>`
    When the directory has uncommitted or untracked changes, version gets `-dirty` and
    created is the newest modification time of its files (the working tree's state). A layer
    with no commit yet is `0.0.0-dirty`; outside any git checkout the source is the path.
    """
    directory = Path(directory).resolve()
    try:
        top = Path(_git(directory, "rev-parse", "--show-toplevel"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return Provenance("", _working_tree_time(directory), "0.0.0-dirty", directory.as_uri(), True)
    try:
        source = _strip_credentials(_git(top, "config", "--get", "remote.origin.url"))
    except subprocess.CalledProcessError:
        source = top.as_uri()
    relative = str(directory.relative_to(top)) or "."
    try:
        revision = _git(top, "log", "-1", "--format=%H", "--", relative)
    except subprocess.CalledProcessError:  # no commits at all yet
        revision = ""
    dirty = bool(_git(top, "status", "--porcelain", "--untracked-files=all", "--", relative))
    if revision:
        created = _git(top, "log", "-1", "--format=%cI", revision)
        version = _git(top, "describe", "--tags", "--always", revision)
    else:
        created, version, dirty = "", "0.0.0", True
    if dirty:
        created = _working_tree_time(directory)
        version += "-dirty"
    version = re.sub(r"[^A-Za-z0-9_.-]", "-", version)
    return Provenance(revision, created, version, source, dirty)


def describe_plan(plan: BuildPlan, os_base: str) -> list[str]:
    """One line per layer: `goldenhub/course-x  FROM goldenhub/framework-y  (courses/x/environment)`."""
    lines = []
    for layer in plan.layers:
        parent = layer.parent or os_base
        lines.append(f"  {layer.repository:<36} FROM {parent:<32} ({layer.directory})")
    return lines
