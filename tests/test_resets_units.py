"""Reset markers and their owners, without Docker: a marker whose process is gone, or whose
time has passed, never keeps a student out of their environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from hub_ext import contract, procstat
from hub_ext.homes import markers, resets
from hub_ext.homes import owner as owner_mod
from hub_ext.homes.owner import Owner
from tests.helpers import wait_for

HOME = "gh-home-alice--intro-2dpython"


def dead_owner() -> Owner:
    """The owner record of a process that has exited since."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        start = procstat.start_time(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return Owner(socket.gethostname(), owner_mod._boot_id(), proc.pid, start)


def write_marker(state_dir, owner: str, expires) -> None:
    marker = contract.reset_marker(state_dir, HOME)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"owner": owner, "created": resets.utcnow().isoformat(),
                                  "expires": expires.isoformat()}))


def test_owner_round_trips_through_its_label_and_knows_it_is_alive():
    me = Owner.current()
    assert me.pid == os.getpid() and me.start != "-"
    assert Owner.parse(me.label()) == me and me.alive() is True
    for bad in (None, 7, "", "a/b/c", "a/b/x/d", "a/b/1/d\n", "a/b/1/c/d"):
        assert Owner.parse(bad) is None


def test_a_gone_process_a_reused_pid_and_a_rebooted_machine_are_not_alive():
    assert dead_owner().alive() is False
    zombie = subprocess.Popen(["sleep", "60"])
    owner = Owner(socket.gethostname(), owner_mod._boot_id(), zombie.pid, procstat.start_time(zombie.pid))
    assert owner.alive() is True
    os.kill(zombie.pid, 9)
    try:  # killed, not yet reaped by its parent (as a hub reaps its service only when it polls)
        wait_for(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                 30, "the process becoming a zombie", interval=0.05)
        assert owner.alive() is False
    finally:
        zombie.wait()
    me = Owner.current()
    assert Owner(me.host, me.boot, me.pid, str(int(me.start) + 1)).alive() is False  # pid reused
    assert Owner(me.host, "another-boot", me.pid, me.start).alive() is False
    assert Owner("some-other-host", me.boot, me.pid, me.start).alive() is None  # cannot tell


def test_the_marker_holds_while_its_reset_runs_and_is_gone_after(tmp_path):
    with markers.resetting(tmp_path, HOME):
        assert markers.reset_in_progress(tmp_path, HOME)
        record = json.loads(contract.reset_marker(tmp_path, HOME).read_text())
        assert record["owner"] == Owner.current().label()
        assert not list(contract.reset_marker(tmp_path, HOME).parent.glob(".*"))  # no temporary file left
    assert not markers.reset_in_progress(tmp_path, HOME)
    assert not contract.reset_marker(tmp_path, HOME).exists()


@pytest.mark.parametrize("case", ["owner gone", "expired", "old format", "garbage", "other host, expired"])
def test_a_stale_marker_is_ignored_and_removed(tmp_path, case):
    later = resets.utcnow() + timedelta(hours=1)
    if case == "owner gone":
        write_marker(tmp_path, dead_owner().label(), later)
    elif case == "expired":
        write_marker(tmp_path, Owner.current().label(), resets.utcnow() - timedelta(seconds=1))
    elif case == "other host, expired":
        write_marker(tmp_path, "elsewhere/b/1/2", resets.utcnow() - timedelta(seconds=1))
    else:
        marker = contract.reset_marker(tmp_path, HOME)
        marker.parent.mkdir(parents=True)
        # The marker an earlier goldenhub wrote: a bare timestamp, no owner.
        marker.write_text(resets.utcnow().isoformat() if case == "old format" else "{not json")
    assert not markers.reset_in_progress(tmp_path, HOME)
    assert not contract.reset_marker(tmp_path, HOME).exists()


def test_another_hosts_marker_holds_until_it_expires(tmp_path):
    write_marker(tmp_path, "elsewhere/b/1/2", resets.utcnow() + timedelta(hours=1))
    assert markers.reset_in_progress(tmp_path, HOME)
    assert contract.reset_marker(tmp_path, HOME).exists()


def test_service_start_removes_only_stale_markers(tmp_path):
    write_marker(tmp_path, dead_owner().label(), resets.utcnow() + timedelta(hours=1))
    live = "gh-home-bob--intro-2dpython"
    with markers.resetting(tmp_path, live):
        assert markers.remove_stale_markers(tmp_path) == [HOME]
        assert markers.reset_in_progress(tmp_path, live)
    assert markers.remove_stale_markers(tmp_path / "nothing-here") == []

