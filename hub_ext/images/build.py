"""Building golden images with a Docker engine: choose the OS base, build the chain, push.

The plan (which layers, names, labels) comes from hub_ext.images.plan; this module only runs it.
Every Docker call has a bound (the client's timeout), and Docker's build output is shown as
it arrives so the user sees which steps came from the cache.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import docker
import docker.errors
import requests.exceptions

from hub_ext.images import offline_base
from hub_ext.images import plan as images

Log = Callable[[str], None]

# The CA bundle the base layer adds to its trust store (empty file: none); see images/base/Dockerfile.
CA_BUNDLE_NAME = "extra-ca.crt"
CONNECT_TIMEOUT_S = 30


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


@dataclass
class BuiltImage:
    layer: images.Layer
    image_id: str
    references: list[str]
    seconds: float
    pushed: list[str] = field(default_factory=list)


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
    ca_bundle: Path | None, out=sys.stdout,
) -> str:
    """Build one layer with the cache, tag it, and return its image id; raises ImagesError on failure."""
    with tempfile.TemporaryDirectory(prefix=f"goldenhub-{layer.kind}-") as tmp:
        context = layer.directory
        if layer.kind == "base":
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
                if "error" in chunk:
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


def build_chain(
    api: docker.APIClient, plan: images.BuildPlan, options: BuildOptions, os_base: OsBase,
    log: Log = print, out=sys.stdout,
) -> list[BuiltImage]:
    """Build every layer of the plan, parents first; each child FROMs its parent's version tag."""
    parents: dict[str, str] = {}
    built: list[BuiltImage] = []
    for layer in plan.layers:
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
        item = BuiltImage(layer, image_id, tags, time.monotonic() - started)
        if options.push:
            push_repo = images.make_push_repository(options.push, layer.repository)
            item.pushed.append(push_image(api, image_id, push_repo, provenance.version, log))
        built.append(item)
    return built
