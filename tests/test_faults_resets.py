"""Resets under faults: sparse files, a helper that cannot start, the service killed with -9
in the middle of a copy, and resets that must touch only what they were asked to.

Whatever happens, a student loses no file, is not told "being reset" for good, and no
half-made copy is ever listed (or restored) as a backup."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import docker
import pytest

from hub_ext import contract
from hub_ext.homes import markers, resets
from hub_ext.homes.resets import ResetError
from tests.helpers import (HELPER, HUB_PORT, PREFIX, REPO_ROOT, SMALL_HOME, ServiceClient, extra_course, hub_running,
                           manifest, run_in_volumes, user_token, volume_exists, volume_files, volumes_of, wait_for)
from tests.helpers import RESET_COURSE as COURSE, RESET_USER as USER  # the `home` fixture's

pytestmark = pytest.mark.integration

# A 1 TiB file of holes, and a 4 GiB one with data at 1 GiB and at 2 GiB (a hole between).
SPARSE_HOME = r"""
cd /h
truncate -s 1T huge.img
truncate -s 4G middle.img
head -c 3M /dev/urandom | dd of=middle.img bs=1M seek=1024 conv=notrunc status=none
printf 'in the middle' | dd of=middle.img bs=1 seek=2147483648 conv=notrunc status=none
echo notes > notes.txt
chown -R 1000:100 /h
"""
# Sizes, owners, modes, mtimes, the data regions' sha256, a hole read back as zeros, and
# what the files occupy on disk (a copy that filled the holes would need 1 TiB).
SPARSE_FACTS = r"""
cd /h
stat -c '%n %s %a %u:%g %Y' huge.img middle.img notes.txt
dd if=middle.img bs=1M skip=1024 count=3 status=none | sha256sum
dd if=middle.img bs=1 skip=2147483648 count=13 status=none; echo
dd if=middle.img bs=1M skip=1500 count=1 status=none | tr -d '\000' | wc -c
cat notes.txt
"""


def allocated_kib(client, volume: str) -> int:
    return int(run_in_volumes(client, "du -sk /h | cut -f1", {volume: "/h"}, mode="ro"))


def helpers_of(client, prefix: str) -> list:
    return [c for c in client.containers.list(all=True, filters={"label": "goldenhub.kind=reset-helper"})
            if c.name.startswith(prefix)]


# --- sparse files (item 8) ------------------------------------------------------------------


def test_a_sparse_home_resets_and_restores_byte_exact_without_reading_its_holes(client, prefix, home):
    run_in_volumes(client, SPARSE_HOME, {home: "/h"})
    facts = run_in_volumes(client, SPARSE_FACTS, {home: "/h"}, mode="ro")
    assert "huge.img 1099511627776 " in facts and "in the middle\n0\n" in facts

    # Bounded well below COPY_TIMEOUT: hashing 1 TiB of holes would take hours.
    backup = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER, timeout=300)

    assert run_in_volumes(client, SPARSE_FACTS, {backup.volume: "/h"}, mode="ro") == facts
    assert allocated_kib(client, backup.volume) < 64 * 1024  # still sparse: 3 MiB of data, not 1 TiB
    assert backup.size_bytes == 1099511627776 + 4294967296 + 6  # whole numbers, however large
    resets.restore_backup(client, backup.volume, helper_image=HELPER, timeout=300)
    assert run_in_volumes(client, SPARSE_FACTS, {home: "/h"}, mode="ro") == facts


def test_a_byte_changed_inside_a_hole_fails_the_verification(client, prefix, home, monkeypatch):
    """Hashing only the data extents still sees every byte: a copy that differs in what was
    a hole in the source does not verify, and the home stays."""
    run_in_volumes(client, SPARSE_HOME, {home: "/h"})
    facts = run_in_volumes(client, SPARSE_FACTS, {home: "/h"}, mode="ro")
    monkeypatch.setattr(resets, "COPY_COMMAND", "cp -a --sparse=always /from/. /to/ && "
                        "printf X | dd of=/to/middle.img bs=1 seek=3000000000 conv=notrunc status=none")
    with pytest.raises(ResetError, match="does not match its source.*home was left as it was and no backup"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER, timeout=300)
    assert run_in_volumes(client, SPARSE_FACTS, {home: "/h"}, mode="ro") == facts
    assert volumes_of(client, prefix) == {home} and not helpers_of(client, prefix)


# --- a helper that is missing or cannot start (items 9, 18) -----------------------------------


def test_a_missing_helper_image_is_refused_and_never_pulled(client, prefix, home):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    before = manifest(client, home)
    missing = f"{prefix.lower()}.invalid/reset-helper:none"  # a pull would try to reach that host
    with pytest.raises(ResetError, match=f"helper image {missing} is not on this machine.*never downloads.*setup"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=missing)
    assert manifest(client, home) == before
    assert volumes_of(client, prefix) == {home} and resets.list_backups(client, USER, COURSE) == []


@pytest.fixture
def image_without_a_shell(client, prefix):
    """An image whose containers cannot start: it has no sh."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    client.api.import_image_from_data(data.getvalue(), repository=f"{prefix.lower()}-nosh", tag="1")
    yield f"{prefix.lower()}-nosh:1"
    client.images.remove(f"{prefix.lower()}-nosh:1", force=True)


def test_a_helper_that_cannot_start_leaves_no_backup_to_restore(client, prefix, home, image_without_a_shell):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    before = manifest(client, home)
    with pytest.raises(ResetError, match="did not start.*home was left as it was and no backup was kept"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=image_without_a_shell)
    assert manifest(client, home) == before
    # No empty volume labelled as a backup, so nothing that a restore would empty the home with.
    assert volumes_of(client, prefix) == {home} and resets.list_backups(client, USER, COURSE) == []
    assert not helpers_of(client, prefix)


# --- the resetting process killed mid-copy (item 6, without a hub) ---------------------------


def test_a_reset_killed_mid_copy_leaves_no_listed_backup_and_the_next_reset_works(client, prefix, home, tmp_path):
    run_in_volumes(client, SMALL_HOME + "head -c 400M /dev/urandom > /h/big.bin\n", {home: "/h"})
    before = manifest(client, home)
    code = textwrap.dedent(f"""
        import docker
        from hub_ext.homes import markers, resets
        with markers.resetting({str(tmp_path)!r}, {home!r}):
            resets.move_home_to_backup(docker.from_env(), {home!r}, user={USER!r}, course={COURSE!r},
                                       helper_image={HELPER!r})
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT)
    try:
        copier = wait_for(lambda: [c for c in client.containers.list(filters={"name": prefix})
                                   if c.name.startswith(prefix) and c.name.endswith("-copy")],
                          120, "the copy starting", interval=0.02)[0]
        copier.pause()  # frozen mid-copy, so the kill below lands before it could finish
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    partial = copier.name.removesuffix("-copy")
    assert volume_exists(client, partial) and contract.reset_marker(tmp_path, home).exists()

    assert resets.list_backups(client, USER, COURSE) == []  # the unverified copy is not a backup
    with pytest.raises(ResetError, match="unverified copy"):
        resets.restore_backup(client, partial, helper_image=HELPER)
    assert not markers.reset_in_progress(tmp_path, home)  # the student may start again

    backup = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)

    assert manifest(client, backup.volume) == before
    assert volumes_of(client, prefix) == {backup.volume} and not helpers_of(client, prefix)
    assert [b.volume for b in resets.list_backups(client, USER, COURSE)] == [backup.volume]


# --- through a real hub and service (items 6, 14, 15) ------------------------------------------

RESET_COURSE = """\
- id: rsec-cpu
  title: Restricted (CPU)
  image: goldenhub/course-intro-python:latest
  gpus: 0
  cpu: 1
  memory: 512M
  groups: [rsec-students]
"""


@pytest.fixture(scope="module")
def own_hub(tmp_path_factory, courses_dir):
    """A hub of its own: these tests kill its service."""
    extra = ("c.JupyterHub.load_roles.append({'name': 'rsec-instructor', 'users': ['rsec-teacher'],"
             " 'scopes': ['custom:goldenhub:reset!group=rsec-students']})\n")
    with hub_running(tmp_path_factory.mktemp("reset-faults-hub"), courses_dir, HUB_PORT + 20, f"{PREFIX}r",
                     extra_config=extra) as hub:
        yield hub


@pytest.fixture(scope="module")
def admin(own_hub):
    return ServiceClient(own_hub, user_token(own_hub, "admin"))


def service_pid(hub) -> int | None:
    """The pid of the goldenhub service that this hub started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == hub.process.pid and b"hub_ext.service" in cmdline:
            return int(stat.parent.name)
    return None


def student_files(volume: str) -> set[str]:
    """The sha256 lines of the files the student wrote."""
    return {line for line in volume_files(volume).splitlines() if line.endswith(("./essay.txt", "./big.bin"))}


def test_service_killed_mid_reset_leaves_no_lasting_damage(own_hub, admin):
    hub, user, client = own_hub, "crash-stu", docker.from_env()
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "cd ~ && echo essay > essay.txt && head -c 400M /dev/urandom > big.bin")[0] == 0
    home = contract.home_volume_name(hub.prefix, user, "lab")
    old_service = service_pid(hub)
    assert old_service

    answers = []
    request = threading.Thread(target=lambda: answers.append(
        admin.call("POST", "/resets", json={"course": "lab", "user": user})))
    request.start()
    copier = wait_for(lambda: [c for c in client.containers.list(filters={"name": hub.prefix})
                               if c.name.startswith(f"{home}-backup-") and c.name.endswith("-copy")],
                      180, "the reset's copy starting", interval=0.02)[0]
    copier.pause()  # frozen mid-copy, so the kill lands before it could finish
    os.kill(old_service, signal.SIGKILL)
    request.join(120)
    partial = copier.name.removesuffix("-copy")

    # The student is not told "being reset": the marker's owner is gone.
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "cat ~/essay.txt") == (0, "essay\n")
    hub.stop(user)
    before = student_files(home)
    assert len(before) == 2

    # The hub starts the service again, which cleans up before it answers.
    wait_for(lambda: (pid := service_pid(hub)) and pid != old_service
             and admin.call("GET", "/").status_code == 200, 180, "the hub restarting the service", interval=1)
    assert admin.call("GET", "/backups", params={"user": user}).json()["backups"] == []
    assert not volume_exists(client, partial)
    assert not [c for c in client.containers.list(all=True, filters={"name": hub.prefix}) if c.name.startswith(partial)]
    entries = admin.call("GET", "/audit").json()["entries"]
    assert any(e["action"] == "cleanup" and partial in e["detail"] for e in entries), entries[:5]

    # The next reset works, and the backup holds the student's files.
    r = admin.call("POST", "/resets", json={"course": "lab", "user": user})
    assert r.status_code == 200 and r.json()["results"][0]["result"] == "ok", r.text
    backup = r.json()["results"][0]["backup"]
    assert student_files(backup) == before and not volume_exists(client, home)
    assert [b["volume"] for b in admin.call("GET", "/backups", params={"user": user}).json()["backups"]] == [backup]


def test_resetting_one_course_keeps_the_students_other_course_running(own_hub, admin):
    hub, user, client = own_hub, "two-courses", docker.from_env()
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "echo lab > ~/lab-notes.txt")[0] == 0
    hub.stop(user)
    hub.spawn(user, {"template": "intro-python-cpu"})
    assert hub.exec(user, "echo intro > ~/intro-notes.txt")[0] == 0
    lab_home = contract.home_volume_name(hub.prefix, user, "lab")
    try:
        r = admin.call("POST", "/resets", json={"course": "lab", "user": user})
        assert r.status_code == 200 and r.json()["results"][0]["result"] == "ok", r.text
        assert (hub.server(user) or {}).get("ready")  # the intro-python server still runs
        assert hub.exec(user, "cat ~/intro-notes.txt") == (0, "intro\n")
        assert not volume_exists(client, lab_home)
        assert "./lab-notes.txt" in volume_files(r.json()["results"][0]["backup"])
    finally:
        hub.stop(user)


def test_an_instructors_reset_all_resets_their_students_and_lists_the_others(own_hub, courses_dir):
    hub, client = own_hub, docker.from_env()
    hub.request("POST", "/groups/rsec-students", json={})
    for name in ("rsec-in", "rsec-out"):
        hub.ensure_user(name)
    hub.request("POST", "/groups/rsec-students/users", json={"users": ["rsec-in"]}).raise_for_status()
    homes = {}
    for name in ("rsec-in", "rsec-out"):
        homes[name] = contract.home_volume_name(hub.prefix, name, "rsec")
        client.volumes.create(name=homes[name], labels={"goldenhub.user": name, "goldenhub.course": "rsec"})
        run_in_volumes(client, f"echo {name} > /h/mine.txt", {homes[name]: "/h"})
    teacher = ServiceClient(hub, user_token(hub, "rsec-teacher"))

    with extra_course(courses_dir, "rsec", RESET_COURSE):
        r = teacher.call("POST", "/resets", json={"course": "rsec", "all": True, "confirm": "rsec"})

    assert r.status_code == 200, r.text
    results = {x["user"]: x for x in r.json()["results"]}
    assert results["rsec-in"]["result"] == "ok" and not volume_exists(client, homes["rsec-in"])
    assert "./mine.txt" in volume_files(results["rsec-in"]["backup"])
    assert results["rsec-out"]["result"] == "refused"
    assert "You may not reset rsec-out's rsec environment" in results["rsec-out"]["message"]
    assert run_in_volumes(client, "cat /h/mine.txt", {homes["rsec-out"]: "/h"}) == "rsec-out\n"  # untouched
    entries = ServiceClient(hub, user_token(hub, "admin")).call("GET", "/audit").json()["entries"]
    assert any(e["actor"] == "rsec-teacher" and e["user"] == "rsec-out" and e["result"] == "refused" for e in entries)
