"""Pushing a published course image and pre-pulling it where students start.

Rules:
- A publish pushes REGISTRY/<namespace>/course-<id>:v<N> and records the image BY DIGEST
  (REGISTRY/<namespace>/course-<id>@sha256:...), so a later push of the same tag never moves a pin.
- A push that fails keeps the locally built image (and its local tags): publishing again
  rebuilds from the layer cache in seconds and retries the push.
- Pre-pulling is best effort: each Docker host serving the course pulls the by-digest
  reference; a host that fails is reported, and students on it pull at start (with progress).
- Progress is one line per layer and status change, never one per byte count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import docker
import docker.errors
import requests.exceptions

from hub_ext.i18n import _
from hub_ext.images import plan as images

Log = Callable[[str], None]


class PushError(Exception):
    """A push that did not reach the registry; str() is the sentence for the log and the page."""


def make_version_tag(number: int) -> str:
    """The tag of published version `number`: v1, v2, ..."""
    return f"v{number}"


def make_digest_reference(push_repository: str, digest: str) -> str:
    """REGISTRY/ns/course-x + sha256:... → REGISTRY/ns/course-x@sha256:..."""
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise ValueError(f"not an image digest: {digest!r}")
    return f"{push_repository}@{digest}"


def split_digest_reference(reference: str) -> tuple[str, str]:
    """REGISTRY/ns/course-x@sha256:... → (REGISTRY/ns/course-x, sha256:...)."""
    repository, _sep, digest = reference.partition("@")
    if not digest:
        raise ValueError(f"not a by-digest reference: {reference!r}")
    return repository, digest


@dataclass(frozen=True)
class Pushed:
    tag: str  # REGISTRY/ns/course-x:vN
    reference: str  # REGISTRY/ns/course-x@sha256:...


def push_version(api: docker.APIClient, image_id: str, push_repository: str, tag: str, local_ref: str,
                 log: Log = print) -> Pushed:
    """Tag `image_id` as push_repository:tag, push it and return the tag and the by-digest
    reference; PushError (naming the kept local image) when the registry does not take it."""
    registry = push_repository.split("/", 1)[0]
    tagged = f"{push_repository}:{tag}"

    def failed(problem: str) -> PushError:
        return PushError(_("pushing to %(registry)s failed: %(problem)s; the built image is kept as %(local)s: "
                           "publish again to retry (the build comes from the cache)",
                           registry=registry, problem=problem.strip()[:500], local=local_ref))

    api.tag(image_id, push_repository, tag, force=True)
    log(_("Pushing %(image)s", image=tagged))
    digest, last = "", {}
    try:
        for chunk in api.push(push_repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise failed(chunk["error"])
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
            _progress(chunk, last, log)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise failed(getattr(exc, "explanation", None) or str(exc)) from exc
    if not digest:
        raise failed(_("the registry answered without the image's digest"))
    reference = make_digest_reference(push_repository, digest)
    log(_("Pushed %(reference)s", reference=reference))
    return Pushed(tagged, reference)


def _progress(chunk: dict, last: dict, log: Log) -> None:
    """One line when a layer's status changes (Preparing → Pushing → Pushed)."""
    status, layer = chunk.get("status"), chunk.get("id")
    if not status:
        return
    if layer is None:
        log(f"  {status}")
    elif last.get(layer) != status:
        last[layer] = status
        log(f"  {layer}: {status}")


@dataclass(frozen=True)
class PrepullResult:
    host: str
    ok: bool
    problem: str = ""


def prepull(hosts: Iterable[tuple[str, docker.APIClient]], reference: str, log: Log = print) -> list[PrepullResult]:
    """Pull `reference` (by digest) on every (name, client) host; a failure on one host is
    reported and the others still pull."""
    repository, digest = split_digest_reference(reference)
    results = []
    for name, api in hosts:
        log(_("Pulling %(reference)s on %(host)s", reference=reference, host=name))
        last: dict = {}
        problem = ""
        try:
            for chunk in api.pull(repository, tag=digest, stream=True, decode=True):
                if "error" in chunk:
                    problem = chunk["error"].strip()
                    break
                _progress(chunk, last, log)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            problem = getattr(exc, "explanation", None) or str(exc)
        results.append(PrepullResult(name, not problem, problem[:500]))
        if problem:
            log(_("Pulling on %(host)s failed: %(problem)s", host=name, problem=problem[:500]))
    return results


def docker_hosts() -> list[tuple[str, docker.APIClient]]:
    """The Docker hosts that serve courses: today the one engine of DOCKER_HOST & co."""
    api = docker.APIClient(timeout=600, **docker.utils.kwargs_from_env())
    return [(api.base_url.replace("http+docker://", "").replace("localhost", "local engine"), api)]


def push_repository_for(registry: str, built_repository: str) -> str:
    """REGISTRY/<namespace>/course-<id> for a built course layer's repository."""
    return images.make_push_repository(registry, built_repository)
