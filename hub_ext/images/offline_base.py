"""An OS base image made without any registry: `debootstrap` a Debian rootfs, `docker import` it.

Used by `goldenhub images build` when the CUDA base image is neither present locally nor
pullable (machines that reach only package mirrors), or when `--offline-base` is given.
The image is reused once it exists; the rootfs is made under a directory goldenhub controls
and removed after the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from hub_ext.contract import OS_BASE_REPOSITORY as OFFLINE_BASE_REPO
from hub_ext.contract import OS_BASE_SUITE as OFFLINE_BASE_SUITE

OFFLINE_BASE_REF = f"{OFFLINE_BASE_REPO}:{OFFLINE_BASE_SUITE}"

# A complete debootstrap leaves this file; a rootfs without it is a half-made one and is redone.
_DONE_MARKER = ".goldenhub-debootstrap-done"
DEBOOTSTRAP_TIMEOUT_S = 30 * 60
IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]


class OfflineBaseError(RuntimeError):
    """The offline base image could not be made; the message says why and what to do."""


def image_exists(api: docker.APIClient, ref: str) -> bool:
    try:
        api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def make_rootfs(target: Path, suite: str = OFFLINE_BASE_SUITE, mirror: str | None = None, log=print) -> Path:
    """Run `debootstrap --variant=minbase <suite> <target> [mirror]` unless a complete rootfs is there."""
    if (target / _DONE_MARKER).exists():
        log(f"Reusing the Debian {suite} rootfs in {target}")
        return target
    if shutil.which("debootstrap") is None:
        raise OfflineBaseError(
            "debootstrap is not installed; install it (apt-get install debootstrap) or pass "
            "--base-image with an image that is present locally."
        )
    if os.geteuid() != 0:
        raise OfflineBaseError("debootstrap needs root; run `goldenhub images build --offline-base` as root.")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    command = ["debootstrap", "--variant=minbase", suite, str(target)]
    if mirror:
        command.append(mirror)
    log(f"Making a Debian {suite} rootfs: {' '.join(command)} (a few minutes)")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise OfflineBaseError(f"debootstrap did not finish within {DEBOOTSTRAP_TIMEOUT_S} s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise OfflineBaseError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
    (target / _DONE_MARKER).touch()
    return target


def import_rootfs(api: docker.APIClient, rootfs: Path, ref: str = OFFLINE_BASE_REF, log=print) -> str:
    """Tar a rootfs (numeric owners, xattrs kept) and `docker import` it as `ref`; returns the image id."""
    repository, _, tag = ref.rpartition(":")
    with tempfile.TemporaryDirectory(prefix="goldenhub-rootfs-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        command = [
            "tar", "--numeric-owner", "--xattrs", "--exclude", f"./{_DONE_MARKER}",
            "-C", str(rootfs), "-cf", str(tarball), ".",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S)
        if result.returncode != 0:
            raise OfflineBaseError(f"tar of {rootfs} failed: {result.stderr.strip()}")
        log(f"Importing {rootfs} as {ref}")
        api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=IMPORT_CHANGES)
    return api.inspect_image(ref)["Id"]


def ensure_offline_base(
    api: docker.APIClient, work_dir: Path, ref: str = OFFLINE_BASE_REF, mirror: str | None = None, log=print
) -> str:
    """Return `ref`, making it (debootstrap under `work_dir`, then import) only if it does not exist yet."""
    if image_exists(api, ref):
        log(f"Reusing the offline base image {ref}")
        return ref
    rootfs = make_rootfs(Path(work_dir) / OFFLINE_BASE_SUITE, mirror=mirror, log=log)
    import_rootfs(api, rootfs, ref, log=log)
    shutil.rmtree(rootfs, ignore_errors=True)
    return ref
