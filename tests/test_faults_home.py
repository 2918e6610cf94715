"""A student's home is full: the server still starts, the student is told why their work
cannot be saved, and every file of theirs is still there to delete or download."""

from __future__ import annotations

import subprocess

import docker
import pytest

from hub_ext import contract

pytestmark = pytest.mark.integration

USER = "fullhome"
HELPER = "goldenhub/os-base:bookworm"


@pytest.fixture
def full_home(hub, tmp_path):
    """The home the spawner would create for USER in course lab, on a 16 MiB disk of its own
    (a tmpfs mounted on the host, bound into a local volume), filled up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(disk)], check=True)
    client = docker.from_env()
    name = contract.home_volume_name(hub.prefix, USER, "lab")
    volume = client.volumes.create(
        name=name, driver="local", labels={"goldenhub.user": USER, "goldenhub.course": "lab"},
        driver_opts={"type": "none", "o": "bind", "device": str(disk)})
    try:
        client.containers.run(
            HELPER, ["sh", "-c", "echo 'chapter one' > /h/thesis.txt && (dd if=/dev/zero of=/h/big.bin bs=64k "
                     "2>/dev/null || true) && chown -R 1000:100 /h"],
            volumes={name: {"bind": "/h", "mode": "rw"}}, network_mode="none", remove=True)
        yield name
    finally:
        hub.request("DELETE", f"/users/{USER}/server")
        hub.stop(USER)
        volume.remove(force=True)
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_home_still_starts_and_says_why_work_cannot_be_saved(hub, full_home):
    response, events = hub.spawn_with_progress(USER, {"template": "lab-cpu"})
    messages = [e.get("message", "") for e in events]
    assert response.status_code in (201, 202), response.text
    assert events[-1].get("ready"), f"the server must start although the home is full: {messages}"
    warning = next((m for m in messages if "home is full" in m), None)
    assert warning and "files are all there" in warning, messages

    code, out = hub.exec(USER, "cat ~/thesis.txt && df -Pk ~ | awk 'NR == 2 {print $4}'")
    assert code == 0 and out.startswith("chapter one\n"), out
    assert int(out.split()[-1]) < 8192, "the home really is full"
    # Making room works from inside the environment: the student can free space and save.
    code, out = hub.exec(USER, "rm ~/big.bin && echo saved > ~/new.txt && cat ~/new.txt")
    assert (code, out) == (0, "saved\n")
