"""Building golden images with a Docker engine: choose the OS base, build the chain, push.

The plan (which layers, names, labels) comes from hub_ext.images.plan and a course layer's
generated Dockerfile from hub_ext.images.course_env; this module only runs them.
Every Docker call has a bound (the client's timeout), and Docker's build output is shown as
it arrives so the user sees which steps came from the cache.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import docker
import docker.errors
import requests.exceptions

from hub_ext.i18n import _
from hub_ext.i18n.format import size_text
from hub_ext.images import course_env, offline_base
from hub_ext.images import plan as images

Log = Callable[[str], None]

# The CA bundle the base layer adds to its trust store (empty file: none); see images/base/Dockerfile.
CA_BUNDLE_NAME = "extra-ca.crt"
CONNECT_TIMEOUT_S = 30
OUTPUT_KEPT_LINES = 400  # of a course layer's build output, to explain its failure


@dataclass
class BuildOptions:
    images_dir: Path
    work_dir: Path  # where the offline base's rootfs is made
    base_image: str | None = None  # --base-image; None: the base Dockerfile's default
    offline_base: bool = False
    apt_mirror: str | None = None
    pip_index_url: str | None = None
    ca_bundle: Path | None = None
    push: str | None = None
    jupyterhub_version: str = ""
    namespace: str = images.IMAGE_NAMESPACE
    courses_dir: Path | None = None  # where courses/<id>/environment/ lives (default: next to images_dir)


@dataclass
class BuiltImage:
    layer: images.Layer
    image_id: str
    references: list[str]
    seconds: float
    pushed: list[str] = field(default_factory=list)
    size_note: str = ""  # make_size_note: what the layer adds to its parent


@dataclass(frozen=True)
class OsBase:
    reference: str
    cuda: bool  # whether requires-cuda frameworks can be built on it
    reason: str


def make_client(timeout: int) -> docker.APIClient:
    """A low-level client from DOCKER_HOST & co.; `timeout` bounds every wait for the engine (s)."""
    try:
        api = docker.APIClient(timeout=CONNECT_TIMEOUT_S, **docker.utils.kwargs_from_env())
        api.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise images.ImagesError(f"the Docker engine does not answer ({exc}); start dockerd and retry") from exc
    api.timeout = timeout
    return api


def choose_os_base(api: docker.APIClient, options: BuildOptions, log: Log = print) -> OsBase:
    """The image the base layer is built FROM, and why it was chosen."""
    default = images.dockerfile_arg_default(options.images_dir / "base" / "Dockerfile", "BASE_IMAGE")
    wanted = options.base_image or default
    if options.offline_base:
        reason = "--offline-base was given"
    elif not wanted:
        reason = "the base Dockerfile names no default BASE_IMAGE and --base-image was not given"
    elif offline_base.image_exists(api, wanted):
        return OsBase(wanted, True, f"{wanted} is present locally")
    else:
        error = _pull(api, wanted, log)
        if error is None:
            return OsBase(wanted, True, f"{wanted} was pulled")
        reason = f"{wanted} is not present locally and cannot be pulled ({error})"
    ref = offline_base.ensure_offline_base(api, options.work_dir, mirror=options.apt_mirror, log=log)
    return OsBase(ref, False, f"{reason}; using the offline Debian base {ref} (no CUDA)")


def _pull(api: docker.APIClient, reference: str, log: Log) -> str | None:
    """Pull an image; returns None on success, else the engine's error."""
    repository, tag = docker.utils.parse_repository_tag(reference)
    log(f"Pulling {reference} ...")
    try:
        for chunk in api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in chunk:
                return chunk["error"].strip()
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return getattr(exc, "explanation", None) or str(exc)
    return None


def make_build_args(layer: images.Layer, options: BuildOptions, os_base: OsBase, parents: dict[str, str]) -> dict:
    """Build args of one layer: the base takes the OS image and network settings, children their parent."""
    if layer.kind == "base":
        args = {"BASE_IMAGE": os_base.reference, "JUPYTERHUB_VERSION": options.jupyterhub_version}
        if options.apt_mirror:
            args["APT_MIRROR"] = options.apt_mirror
        if options.pip_index_url:
            args["PIP_INDEX_URL"] = options.pip_index_url
        return args
    name = "BASE" if layer.kind == "framework" else "FRAMEWORK_IMAGE"
    return {name: parents[layer.parent]}


def build_layer(
    api: docker.APIClient, layer: images.Layer, buildargs: dict, labels: dict, tags: list[str],
    ca_bundle: Path | None, out=sys.stdout, env: course_env.EnvFiles | None = None,
) -> str:
    """Build one layer with the cache, tag it, and return its image id; raises ImagesError on failure.
    A course layer's context is generated from `env` (its Dockerfile and env files only)."""
    with tempfile.TemporaryDirectory(prefix=f"goldenhub-{layer.kind}-") as tmp:
        context = layer.directory
        kept: deque[str] = deque(maxlen=OUTPUT_KEPT_LINES)
        if layer.kind == "course":
            if env is None:
                raise images.ImagesError(f"the course layer of {layer.name}: no environment files were read")
            context = course_env.make_context(env, Path(tmp) / "context")
        elif layer.kind == "base":
            # A copy of the layer plus the CA bundle; file contents (not the temp path) decide the cache.
            context = Path(tmp) / "context"
            shutil.copytree(layer.directory, context)
            target = context / CA_BUNDLE_NAME
            if ca_bundle:
                shutil.copyfile(ca_bundle, target)
            else:
                target.write_bytes(b"")
        image_id = None
        try:
            stream = api.build(
                path=str(context), tag=tags[0], buildargs=buildargs, labels=labels,
                rm=True, forcerm=True, pull=False, decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    out.write(chunk["stream"])
                    out.flush()
                    kept.extend(chunk["stream"].splitlines())
                if "error" in chunk:
                    if layer.kind == "course":
                        reason = course_env.explain_failure("\n".join(kept)) or chunk["error"].strip()
                        raise images.ImagesError(_("building the course layer of %(course)s failed: %(reason)s",
                                                   course=layer.name, reason=reason))
                    raise images.ImagesError(f"building {layer.repository} failed: {chunk['error'].strip()}")
                if isinstance(chunk.get("aux"), dict) and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
        except requests.exceptions.ReadTimeout as exc:
            raise images.ImagesError(
                f"building {layer.repository}: the engine sent nothing for {api.timeout} s; "
                "give a larger --timeout if a step is legitimately that slow"
            ) from exc
        except docker.errors.APIError as exc:
            raise images.ImagesError(f"building {layer.repository} failed: {exc.explanation or exc}") from exc
    image_id = image_id or api.inspect_image(tags[0])["Id"]
    for ref in tags[1:]:
        repository, tag = ref.rsplit(":", 1)
        api.tag(image_id, repository, tag, force=True)
    return image_id


def image_size(api: docker.APIClient, reference: str) -> int | None:
    """An image's size in bytes as the engine reports it; None when it cannot say."""
    try:
        return int(api.inspect_image(reference)["Size"])
    except (docker.errors.APIError, requests.exceptions.RequestException, KeyError, TypeError, ValueError):
        return None


def make_size_note(size: int | None, parent_size: int | None) -> str:
    """What a layer adds: its image's size less its parent's (never below 0), and the total.
    Empty when the engine did not report the image's size."""
    if size is None:
        return ""
    if parent_size is None:
        return _("%(size)s in all", size=size_text(size))
    return _("adds %(added)s (%(size)s in all)", added=size_text(max(0, size - parent_size)), size=size_text(size))


def _size_note(api: docker.APIClient, image_id: str, parent: str, log: Log) -> str:
    note = make_size_note(image_size(api, image_id), image_size(api, parent))
    if note:
        log(note)
    return note


def push_image(api: docker.APIClient, image_id: str, repository: str, version: str, log: Log = print) -> str:
    """Tag `image_id` as repository:version and push it; returns the pushed reference."""
    api.tag(image_id, repository, version, force=True)
    reference = f"{repository}:{version}"
    log(f"Pushing {reference}")
    digest = ""
    try:
        for chunk in api.push(repository, tag=version, stream=True, decode=True):
            if "error" in chunk:
                raise images.ImagesError(f"pushing {reference} failed: {chunk['error'].strip()}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise images.ImagesError(f"pushing {reference} failed: {exc}") from exc
    log(f"Pushed {reference} {digest}".rstrip())
    return reference


def course_provenance(env: course_env.EnvFiles) -> images.Provenance:
    """The OCI provenance of a course layer: its env files' git provenance when known."""
    if env.provenance is not None:
        return env.provenance
    return images.Provenance(env.commit, "", env.commit[:12] or "0.0.0-dirty", env.source, not env.commit)


def build_chain(
    api: docker.APIClient, plan: images.BuildPlan, options: BuildOptions, os_base: OsBase,
    log: Log = print, out=sys.stdout, envs: dict[str, course_env.EnvFiles] | None = None,
) -> list[BuiltImage]:
    """Build every layer of the plan, parents first; each child FROMs its parent's version tag.
    A course layer is generated from envs[course id], else from its directory's files."""
    parents: dict[str, str] = {}
    built: list[BuiltImage] = []
    base_repository = plan.layers[0].repository if plan.layers else ""
    for layer in plan.layers:
        if layer.kind == "course":
            env = (envs or {}).get(layer.name) or course_env.local_env(layer.directory)
            item = build_course_layer(api, layer, env, parents.get(base_repository, ""), parents[layer.parent],
                                      options, log=log, out=out)
            built.append(item)
            continue
        provenance = images.git_provenance(layer.directory)
        tags = images.make_tags(layer.repository, provenance.version)
        labels = images.make_labels(layer, provenance)
        buildargs = make_build_args(layer, options, os_base, parents)
        parent = layer.parent and parents[layer.parent]
        log(f"\n=== {layer.kind} {layer.name}: {tags[0]} FROM {parent or os_base.reference} "
            f"(revision {provenance.revision[:12] or 'none'}{', dirty' if provenance.dirty else ''})")
        started = time.monotonic()
        image_id = build_layer(api, layer, buildargs, labels, tags, options.ca_bundle, out=out)
        parents[layer.repository] = tags[0]
        item = BuiltImage(layer, image_id, tags, time.monotonic() - started,
                          size_note=_size_note(api, image_id, parent or os_base.reference, log))
        built.append(_pushed(api, item, options, provenance.version, log))
    return built


def _pushed(api: docker.APIClient, item: BuiltImage, options: BuildOptions, version: str, log: Log) -> BuiltImage:
    if options.push:
        push_repo = images.make_push_repository(options.push, item.layer.repository)
        item.pushed.append(push_image(api, item.image_id, push_repo, version, log))
    return item


def build_course_layer(
    api: docker.APIClient, layer: images.Layer, env: course_env.EnvFiles, base_image: str, framework_image: str,
    options: BuildOptions, log: Log = print, out=sys.stdout,
) -> BuiltImage:
    """Build a course layer generated from `env` FROM `framework_image` ("name:version", which
    must exist); `base_image` is the framework's base, recorded in the labels."""
    provenance = course_provenance(env)
    tags = images.make_tags(layer.repository, provenance.version)
    labels = images.make_labels(layer, provenance, env=env, parents=(base_image, framework_image))
    log(f"\n=== course {layer.name}: {tags[0]} FROM {framework_image} "
        f"(revision {provenance.revision[:12] or 'none'}{', dirty' if provenance.dirty else ''})")
    started = time.monotonic()
    image_id = build_layer(api, layer, {"FRAMEWORK_IMAGE": framework_image}, labels, tags, options.ca_bundle,
                           out=out, env=env)
    item = BuiltImage(layer, image_id, tags, time.monotonic() - started,
                      size_note=_size_note(api, image_id, framework_image, log))
    return _pushed(api, item, options, provenance.version, log)


def build_course(
    api: docker.APIClient, course, env: course_env.EnvFiles, options: BuildOptions, log: Log = print,
    out=sys.stdout,
) -> BuiltImage:
    """Build one catalog course's image from `env` (read_env_dir or env_from_checkout): base and
    framework come from the cache (built when missing), the course layer is generated. Returns
    the course layer; raises images.ImagesError (course_env.EnvError for refused files) whose
    message shows pip's or postBuild's failing lines."""
    if course.framework is None:
        raise images.ImagesError(f"{course.id}: no framework in its course file; no image can be built")
    os_base = choose_os_base(api, options, log)
    plan = images.plan_chain([course], options.images_dir, cuda_base=os_base.cuda, namespace=options.namespace,
                             courses_dir=options.courses_dir, require_env=False)
    for note in plan.notes:
        log(note)
    return build_chain(api, plan, options, os_base, log=log, out=out, envs={course.id: env})[-1]
