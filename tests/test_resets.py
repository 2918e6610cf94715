"""Resets lose nothing: a student's home moves to a verified backup, the next start is fresh,
restores bring every byte back, and concurrent operations on one home stay consistent.

File contents, modes, owners and mtimes are compared from inside containers, independently of
the verification that hub_ext.homes.resets does itself."""

from __future__ import annotations

import random
import re
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from hub_ext import contract
from hub_ext.homes import resets
from hub_ext.homes.resets import Backup, ResetError
from tests.helpers import (HELPER, RESET_COURSE, RESET_USER, SMALL_HOME, manifest, run_in_volumes, volume_exists,
                           volumes_of)

COURSE_IMAGE = "goldenhub/course-intro-python:latest"
COURSE, USER = RESET_COURSE, RESET_USER  # the `home` fixture's
T0 = datetime(2026, 3, 1, 9, 30, 0, tzinfo=timezone.utc)
BIG_FILE = "head -c 100M /dev/urandom > /h/big.bin && chown 1000:100 /h/big.bin\n"


# --- pure ----------------------------------------------------------------------------------


def test_backup_name_is_dated_in_utc_and_a_valid_volume_name():
    when = datetime(2026, 3, 1, 10, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    name = contract.backup_volume_name("gh-home-alice--intro-2dpython", when)
    assert name == "gh-home-alice--intro-2dpython-backup-20260301T093005Z"
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name)


def test_backup_is_read_from_labels_and_other_volumes_are_not_backups():
    labels = {"goldenhub.kind": "backup", "goldenhub.backup-of": "gh-home-bob--dl", "goldenhub.user": "bob",
              "goldenhub.course": "dl", "goldenhub.created": "2026-03-01T09:30:00.250000+00:00"}
    assert Backup.from_labels("v", labels, 7) == Backup("v", "bob", "dl", "gh-home-bob--dl",
                                                        T0 + timedelta(microseconds=250000), 7)
    naive = Backup.from_labels("v", {**labels, "goldenhub.created": "2026-03-01T09:30:00"})
    assert naive.created == T0 and naive.created.tzinfo is not None
    assert Backup.from_labels("home", {"goldenhub.user": "bob", "goldenhub.course": "dl"}) is None
    assert Backup.from_labels("v", {**labels, "goldenhub.created": "yesterday"}) is None
    assert Backup.from_labels("v", None) is None


def test_list_backups_asks_docker_for_backup_labels_and_sorts_newest_first():
    def volume(name, created):
        return SimpleNamespace(name=name, attrs={"Labels": {
            "goldenhub.kind": "backup", "goldenhub.backup-of": "h", "goldenhub.user": "bob",
            "goldenhub.course": "dl", "goldenhub.created": created.isoformat()}})

    asked = {}

    def list_volumes(filters):
        asked.update(filters)
        return [volume("old", T0), volume("new", T0 + timedelta(days=1)), SimpleNamespace(name="x", attrs={})]

    client = SimpleNamespace(volumes=SimpleNamespace(list=list_volumes),
                             api=SimpleNamespace(containers=lambda **kwargs: []))  # no copy in progress
    assert [b.volume for b in resets.list_backups(client, user="bob", course="dl")] == ["new", "old"]
    assert sorted(asked["label"]) == ["goldenhub.course=dl", "goldenhub.kind=backup", "goldenhub.user=bob"]


# --- integration -------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """resets' clock, one minute further at every reading."""
    now = [T0]

    def utcnow():
        now[0] += timedelta(minutes=1)
        return now[0]

    monkeypatch.setattr(resets, "utcnow", utcnow)
    return now


@pytest.mark.integration
def test_move_keeps_every_byte_and_the_next_start_is_fresh(client, prefix, home):
    run_in_volumes(client, SMALL_HOME + BIG_FILE, {home: "/h"})
    before = manifest(client, home)
    assert "./big.bin" in before and "f 600 1000:100" in before and "l 777" in before

    backup = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER, when=T0)

    assert backup.volume == f"{home}-backup-20260301T093000Z" and backup.home_volume == home
    assert backup.size_bytes >= 100 * 2**20 and backup.created == T0
    assert manifest(client, backup.volume) == before  # byte for byte, with modes, owners, mtimes
    assert not volume_exists(client, home)
    assert resets.list_backups(client, USER, COURSE)[0].volume == backup.volume
    labels = client.volumes.get(backup.volume).attrs["Labels"]
    assert labels["goldenhub.backup-of"] == home and labels["goldenhub.created"] == T0.isoformat()
    # Nothing to move any more: the home is fresh already.
    assert resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER) is None

    # The next start: the spawner creates the home again and Docker fills it from the image.
    client.volumes.create(name=home, labels={"goldenhub.user": USER, "goldenhub.course": COURSE})
    listing = run_in_volumes(client, "ls -A /home/jovyan", {home: "/home/jovyan"}, image=COURSE_IMAGE).split()
    assert ".bashrc" in listing
    assert not {"notes.txt", ".hidden", ".config", "big.bin", "private.key"} & set(listing)
    assert not [c for c in client.containers.list(all=True) if c.name.startswith(prefix)]


@pytest.mark.integration
def test_restore_brings_files_back_and_keeps_the_home_it_replaced(client, prefix, home, clock):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    original = manifest(client, home)
    first = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    client.volumes.create(name=home, labels={"goldenhub.user": USER, "goldenhub.course": COURSE})
    run_in_volumes(client, "echo 'after reset' > /home/jovyan/new.txt", {home: "/home/jovyan"}, image=COURSE_IMAGE)
    fresh = manifest(client, home)

    replaced = resets.restore_backup(client, first.volume, helper_image=HELPER)

    assert manifest(client, home) == original
    labels = client.volumes.get(home).attrs["Labels"]
    assert labels["goldenhub.user"] == USER and labels["goldenhub.course"] == COURSE
    assert labels["goldenhub.restored-from"] == first.volume and "goldenhub.kind" not in labels
    assert manifest(client, first.volume) == original  # the restored-from backup is kept
    assert manifest(client, replaced.volume) == fresh and "./new.txt" in fresh
    assert [b.volume for b in resets.list_backups(client, USER, COURSE)] == [replaced.volume, first.volume]

    with pytest.raises(ResetError, match="not a goldenhub backup"):
        resets.delete_backup(client, home)
    assert volume_exists(client, home)
    resets.delete_backup(client, replaced.volume)
    assert [b.volume for b in resets.list_backups(client, USER, COURSE)] == [first.volume]
    # Restoring when no home exists replaces nothing.
    resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    assert resets.restore_backup(client, first.volume, helper_image=HELPER) is None
    assert manifest(client, home) == original


@pytest.mark.integration
def test_a_home_or_backup_in_use_by_a_container_is_refused_and_left_untouched(client, prefix, home):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    before = manifest(client, home)
    stopped = client.containers.create(HELPER, ["true"], name=f"{prefix}-server", volumes={home: {"bind": "/h"}})
    with pytest.raises(ResetError, match=f"used by container.*{prefix}-server.*stop the student's server"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    assert volumes_of(client, prefix) == {home}
    stopped.remove()

    backup = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    resets.restore_backup(client, backup.volume, helper_image=HELPER)
    running = client.containers.run(HELPER, ["sleep", "300"], name=f"{prefix}-running", detach=True,
                                    volumes={home: {"bind": "/h"}, backup.volume: {"bind": "/b"}})
    with pytest.raises(ResetError, match="used by container"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    with pytest.raises(ResetError, match="used by container"):
        resets.restore_backup(client, backup.volume, helper_image=HELPER)
    with pytest.raises(ResetError, match="backup .* is used by container"):
        resets.delete_backup(client, backup.volume)
    running.remove(force=True)
    assert manifest(client, home) == before
    assert volumes_of(client, prefix) == {home, backup.volume}


@pytest.mark.integration
@pytest.mark.parametrize("copy, timeout, error", [
    ("cp -a /from/. /to/ && rm /to/notes.txt", 120, "does not match its source"),
    ("sleep 60", 2, "longer than 2 s"),
])
def test_a_failed_copy_leaves_the_home_untouched_and_no_backup(client, prefix, home, monkeypatch,
                                                               copy, timeout, error):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    before = manifest(client, home)
    monkeypatch.setattr(resets, "COPY_COMMAND", copy)
    with pytest.raises(ResetError, match=f"{error}.*home was left as it was"):
        resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER, timeout=timeout)
    assert manifest(client, home) == before
    assert volumes_of(client, prefix) == {home}
    assert not [c for c in client.containers.list(all=True) if c.name.startswith(prefix)]


@pytest.mark.integration
def test_a_failed_restore_keeps_both_the_backup_and_the_home_it_replaced(client, prefix, home, clock, monkeypatch):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    original = manifest(client, home)
    first = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
    client.volumes.create(name=home, labels={"goldenhub.user": USER, "goldenhub.course": COURSE})
    run_in_volumes(client, "echo 'after reset' > /h/new.txt", {home: "/h"})
    fresh = manifest(client, home)
    copy = resets._copy_and_verify

    def copy_into_home_fails(client_, source, dest, *args):
        if dest == home:
            monkeypatch.setattr(resets, "COPY_COMMAND", "cp -a /from/. /to/ && rm /to/notes.txt")
        return copy(client_, source, dest, *args)

    monkeypatch.setattr(resets, "_copy_and_verify", copy_into_home_fails)
    with pytest.raises(ResetError, match="does not match.*home it replaced is kept in backup .*fresh home"):
        resets.restore_backup(client, first.volume, helper_image=HELPER)
    assert not volume_exists(client, home)
    backups = resets.list_backups(client, USER, COURSE)
    assert [b.volume for b in backups][1:] == [first.volume]
    assert manifest(client, backups[0].volume) == fresh and manifest(client, first.volume) == original


@pytest.mark.integration
def test_a_taken_backup_name_gets_a_suffix_and_the_other_volume_is_kept(client, prefix, home):
    run_in_volumes(client, SMALL_HOME, {home: "/h"})
    taken = contract.backup_volume_name(home, T0)
    client.volumes.create(name=taken)
    run_in_volumes(client, "echo someone else > /h/x", {taken: "/h"})
    backup = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER, when=T0)
    assert backup.volume == f"{taken}-2"
    assert run_in_volumes(client, "cat /h/x", {taken: "/h"}) == "someone else\n"


@pytest.mark.integration
def test_concurrent_moves_and_restores_of_one_home_lose_nothing(client, prefix, home):
    """Files come in units written at once (the first home's files; each later session's
    pair): a volume holds all of a unit, with the right bytes, or none of it."""
    def write_unit(script: str, paths: list[str]) -> dict[str, str]:
        out = run_in_volumes(client, f"cd /h && {script} && sha256sum {' '.join(paths)}", {home: "/h"})
        return {path: digest for digest, path in (line.split() for line in out.splitlines())}

    units = [write_unit("head -c 2M /dev/urandom > data.bin && mkdir .cache && echo c > .cache/c",
                        ["data.bin", ".cache/c"])]
    done: list[str] = []
    errors: list[BaseException] = []

    def student_session(tag: str) -> None:
        with resets.home_lock(home):  # the server runs only between operations
            if not volume_exists(client, home):
                client.volumes.create(name=home, labels={"goldenhub.user": USER, "goldenhub.course": COURSE})
            units.append(write_unit(f"mkdir {tag} && echo {tag} > {tag}/a.txt && head -c 1M /dev/urandom > {tag}/b.bin",
                                    [f"{tag}/a.txt", f"{tag}/b.bin"]))

    def worker(i: int) -> None:
        rng = random.Random(i)
        try:
            for step in range(3):
                op = rng.choice(["move", "restore", "write"])
                if op == "move":
                    moved = resets.move_home_to_backup(client, home, user=USER, course=COURSE, helper_image=HELPER)
                    done.append("move" if moved else "move-nothing")
                elif op == "restore" and (backups := resets.list_backups(client, USER, COURSE)):
                    resets.restore_backup(client, rng.choice(backups).volume, helper_image=HELPER)
                    done.append("restore")
                else:
                    student_session(f"t{i}-{step}")
                    done.append("write")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    assert len(done) == 24 and "move" in done and len(units) > 1, done

    volumes = sorted(volumes_of(client, prefix))
    backups = {b.volume for b in resets.list_backups(client, USER, COURSE)}
    assert backups and set(volumes) - backups <= {home}  # nothing half-made is left lying around
    mounts = {v: f"/v/{n}" for n, v in enumerate(volumes)}
    listing = run_in_volumes(client, "cd /v && find . -type f -exec sha256sum {} +", mounts, mode="ro")
    content: dict[str, dict[str, str]] = {v: {} for v in volumes}
    for line in listing.splitlines():
        digest, path = line.split("  ./")
        n, name = path.split("/", 1)
        content[volumes[int(n)]][name] = digest
    every = {name: digest for unit in units for name, digest in unit.items()}
    for volume, files in content.items():
        assert files and set(files) <= set(every), f"{volume}: unexpected files {set(files) - set(every)}"
        for unit in units:
            held = {name: files[name] for name in unit if name in files}
            assert held in ({}, unit), f"{volume} holds part of a unit or changed bytes: {held} vs {unit}"
    for name, digest in every.items():
        assert any(files.get(name) == digest for files in content.values()), f"{name} was lost"
    assert not [c for c in client.containers.list(all=True) if c.name.startswith(prefix)]


@pytest.mark.integration
def test_reset_benchmark_resets_a_small_course_and_cleans_up(client, prefix, capsys):
    from benchmarks import reset as bench

    assert bench.main(["--homes", "2", "--mb", "1", "--prefix", prefix]) == 0
    report = capsys.readouterr().out
    assert "ok: 2/2; backups made: 2; homes left: 0" in report and "no stock comparison" in report
    assert not volumes_of(client, prefix)
