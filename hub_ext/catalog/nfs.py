"""Datasets on NFS: `nfs://server/export/path` as a dataset source, on every backend.

Rules (the source is matched whole, nothing is guessed):
- server: a hostname (RFC 1123 labels, at most 253 characters) or an IPv4 address, or an
  IPv6 address in brackets; no user, no port, no query. A comma, '=' or space could add
  mount options through Docker's `o=addr=...`, so none can pass.
- path: absolute, at most MAX_PATH characters, components of [A-Za-z0-9._~+@-] only, never
  '.' or '..', no empty component (no '//'); a trailing '/' is dropped.
- Mounted read-only always, as a soft mount with bounded retries (TIMEO deciseconds per try,
  RETRANS tries), so a dead server fails a start or a read instead of hanging it for ever.
- Docker: one named volume per source with the `local` driver (type=nfs), shared by every
  student of that dataset and mounted read-only; Docker's local driver resolves a hostname in
  addr= itself. Kubernetes: an `nfs:` volume with readOnly (spawner/k8s.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from hub_ext.i18n import _

SCHEME = "nfs://"
MAX_PATH = 1024
NFS_VERSION = "4.1"
TIMEO = 100  # deciseconds per try (10 s)
RETRANS = 3  # tries before a soft mount gives up
KIND_NFS_DATASET = "nfs-dataset"  # goldenhub.kind on the volume

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._~+@-]{1,255})+/?")
_SOURCE_RE = re.compile(r"nfs://(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(/[^\0]*)")


class NfsError(ValueError):
    """A source that starts with nfs:// but is not a usable one; str() says what is allowed."""


@dataclass(frozen=True)
class NfsSource:
    server: str  # hostname, IPv4, or IPv6 without brackets
    path: str  # absolute export path

    @property
    def url(self) -> str:
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{SCHEME}{host}{self.path}"


def is_nfs(value: object) -> bool:
    return isinstance(value, str) and value[:len(SCHEME)].lower() == SCHEME


def _server(text: str) -> str | None:
    if text.startswith("["):
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            return None
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    return text.lower() if len(text) <= 253 and _HOST_RE.fullmatch(text) else None


def parse(value: str) -> NfsSource:
    """The source as NfsSource, or NfsError (the caller words the message)."""
    m = _SOURCE_RE.fullmatch(value) if len(value) <= len(SCHEME) + 255 + MAX_PATH else None
    server = _server(m.group(1)) if m else None
    path = m.group(2) if m else ""
    if server is None or len(path) > MAX_PATH or not _PATH_RE.fullmatch(path):
        raise NfsError(value)
    parts = path.strip("/").split("/")
    if any(p in (".", "..") for p in parts):
        raise NfsError(value)
    return NfsSource(server, "/" + "/".join(parts))


def volume_name(prefix: str, source: NfsSource) -> str:
    """One Docker volume per NFS source (and per mount options: they are part of the hash,
    so a change of options never reuses a volume made with the old ones)."""
    return f"{prefix}-nfs-{_digest(source)}"


def _digest(source: NfsSource) -> str:
    return hashlib.sha256(f"{source.url}|{mount_options(source)}".encode()).hexdigest()[:16]


def mount_options(source: NfsSource) -> str:
    return f"addr={source.server},ro,nfsvers={NFS_VERSION},soft,timeo={TIMEO},retrans={RETRANS}"


def docker_volume_options(source: NfsSource) -> dict[str, str]:
    """driver_opts of Docker's local driver for this source."""
    return {"type": "nfs", "o": mount_options(source), "device": f":{source.path}"}


def docker_volume_args(prefix: str, source: NfsSource) -> dict:
    """Keyword arguments for docker's create_volume (the same the container's mount declares)."""
    return dict(name=volume_name(prefix, source), driver="local", driver_opts=docker_volume_options(source),
                labels={"goldenhub.kind": KIND_NFS_DATASET, "goldenhub.source": source.url})


def kube_volume(name: str, source: NfsSource) -> dict:
    """A pod's volume for this source."""
    return {"name": name, "nfs": {"server": source.server, "path": source.path, "readOnly": True}}


_MOUNT_FAILURE = re.compile(r"(?i)nfs|failed to mount local volume|error while mounting volume|"
                            r"connection refused|no route to host|timed out|no such host")


def unreachable_dataset(error_text: str, datasets) -> str:
    """The name of the NFS dataset a Docker error is about, or "" (the volume name, the server
    or the export path appears in the error together with a mount failure)."""
    if not _MOUNT_FAILURE.search(error_text):
        return ""
    for d in datasets:
        if not is_nfs(d.source):
            continue
        try:
            source = parse(d.source)
        except NfsError:
            continue
        if any(t in error_text for t in (f"-nfs-{_digest(source)}", f"addr={source.server},", f":{source.path}:")):
            return d.name
    return ""


def unreachable_sentence(name: str) -> str:
    """What the student reads when the NFS mount of dataset `name` fails (the hub log has the detail)."""
    return _("The dataset server for %(name)s is unreachable, so your environment cannot start; an "
             "administrator has been told. Try again later.", name=name)
