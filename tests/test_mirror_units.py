"""The courseware mirror's rules (interval, naming, warning text, mounts) as plain values,
and ensure_mirror against a real local git daemon (no Docker, no hub)."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from hub_ext import samples
from hub_ext.courseware import rules
from hub_ext.courseware.mirror import MirrorSettings, ensure_mirror, mirror_for_start
from hub_ext.courseware.rules import MirrorRecord, fetch_due, mirror_name, stale_warning
from hub_ext import i18n
from spawner import container
from tests.helpers import CountingGitRemote, WorkingCopy, free_port
from tests.test_container_spec import CTX, TEMPLATE

DATA = Path(__file__).parent / "data" / "lab-courseware"


# --- naming -------------------------------------------------------------------------------------

def test_a_mirror_is_named_by_a_hash_of_its_url_never_by_the_url():
    name = mirror_name("git://host.docker.internal/../../etc/passwd.git")
    assert len(name) == 36 and name.endswith(".git") and all(c in "0123456789abcdef" for c in name[:32])
    assert mirror_name("https://a.example/x.git") != mirror_name("https://a.example/y.git")
    assert mirror_name("https://a.example/x.git") == mirror_name("https://a.example/x.git")


# --- interval -----------------------------------------------------------------------------------

@pytest.mark.parametrize("record, now, asked, interval, due", [
    (MirrorRecord(), 100, 100, 60, True),  # never fetched
    (MirrorRecord("u", 50, 50), 100, 100, 60, False),  # fetched 50 s ago, interval 60
    (MirrorRecord("u", 30, 30), 100, 100, 60, True),  # 70 s ago
    (MirrorRecord("u", 10, 50, "down"), 100, 100, 60, False),  # a failed try counts too
    (MirrorRecord("u", 99, 99), 100, 98, 0, False),  # interval 0: a fetch begun after asking serves
    (MirrorRecord("u", 97, 97), 100, 98, 0, True),  # ... one begun before it does not
])
def test_a_mirror_is_fetched_at_most_once_per_interval(record, now, asked, interval, due):
    assert fetch_due(record, now, asked, interval) is due


# --- warning text -------------------------------------------------------------------------------

@pytest.mark.parametrize("age, words", [(20, "less than a minute ago"), (60, "1 minute ago"),
                                        (12 * 60 + 5, "12 minutes ago"), (3 * 3600, "3 hours ago"),
                                        (2 * 86400, "2 days ago")])
def test_the_warning_says_how_old_the_materials_are(age, words):
    record = MirrorRecord("u", 1000, 1000 + age, "Connection refused")
    assert stale_warning(record, 1000 + age) == f"course materials as of {words}: the course's git server did not answer"


def test_the_warning_in_chinese():
    token = i18n.use("zh_CN")
    try:
        text = stale_warning(MirrorRecord("u", 0.5, 720, "x"), 720.5)
    finally:
        i18n._current.reset(token)
    assert "12" in text and "分钟" in text and "course" not in text


def test_no_warning_for_a_current_mirror_or_no_mirror():
    assert stale_warning(MirrorRecord("u", 10, 10, ""), 5000) == ""
    assert stale_warning(MirrorRecord("u", 0, 10, "down"), 20) == ""


# --- what the container gets --------------------------------------------------------------------

def test_the_mirror_is_mounted_read_only_and_is_the_only_extra_mount():
    ctx = replace(CTX, courseware_mirror="/srv/state/courseware/abc.git")
    mounts = [dict(m) for m in container.make_host_config(TEMPLATE, ctx)["mounts"]]
    assert mounts[-1] == {"Target": rules.MIRROR_MOUNT, "Source": "/srv/state/courseware/abc.git",
                          "Type": "bind", "ReadOnly": True}
    assert len(mounts) == 3  # home, the dataset, the mirror
    env = container.make_environment(TEMPLATE, ctx)
    assert env["GOLDENHUB_COURSEWARE_SOURCE"] == "file:///srv/goldenhub-courseware.git"
    assert env["GOLDENHUB_COURSEWARE_REPO"] == "git://host.docker.internal/intro.git"  # named in notes
    assert "GOLDENHUB_COURSEWARE_STALE" not in env


def test_without_a_mirror_the_container_pulls_from_the_remote_as_before():
    env = container.make_environment(TEMPLATE, replace(CTX, courseware_stale="ignored without a mirror"))
    assert "GOLDENHUB_COURSEWARE_SOURCE" not in env and "GOLDENHUB_COURSEWARE_STALE" not in env
    assert len(container.make_host_config(TEMPLATE, CTX)["mounts"]) == 2
    no_courseware = replace(TEMPLATE, courseware=None)
    assert len(container.make_mounts(no_courseware, "v", "/srv/state/courseware/abc.git")) == 2


def test_a_stale_mirror_warning_reaches_the_container():
    ctx = replace(CTX, courseware_mirror="/m.git", courseware_stale="course materials as of 3 hours ago: x")
    assert container.make_environment(TEMPLATE, ctx)["GOLDENHUB_COURSEWARE_STALE"].startswith("course materials")


# --- ensure_mirror against a real git daemon ------------------------------------------------------

@pytest.fixture
def remote(tmp_path):
    samples.ensure_repo_from_dir(DATA, tmp_path / "remote" / "lab.git")
    r = CountingGitRemote(tmp_path / "remote", "127.0.0.1", free_port())
    r.start()
    yield r
    r.stop()


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _settings(tmp_path, **kw) -> MirrorSettings:
    return MirrorSettings(tmp_path / "state" / "courseware", **{"timeout_s": 30, **kw})


def _files(mirror_path: Path) -> str:
    import subprocess

    return subprocess.run(["git", "--git-dir", str(mirror_path), "ls-tree", "--name-only", "main"],
                          capture_output=True, text=True, check=True).stdout


def test_a_burst_costs_one_fetch_and_the_mirror_is_private(tmp_path, remote):
    settings, clock = _settings(tmp_path), Clock()
    results = []
    old_umask = os.umask(0o077)  # the hub's own umask: the container's user must still read the mirror
    threads = [threading.Thread(target=lambda: results.append(ensure_mirror(remote.url("lab"), settings,
                                                                           asked_at=clock.now, clock=clock)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.umask(old_umask)
    assert remote.fetches("lab") == 1
    unreadable = [p for p in results[0].path.rglob("*") if not p.stat().st_mode & 0o004]
    assert results[0].path.stat().st_mode & 0o005 == 0o005 and unreadable == []
    assert all(m is not None and m.path == results[0].path for m in results)
    assert "hello.py" in _files(results[0].path)
    assert (settings.root.stat().st_mode & 0o777) == 0o700
    assert results[0].path.name == mirror_name(remote.url("lab"))
    clock.now += 61  # the interval passed: the next start fetches again
    ensure_mirror(remote.url("lab"), settings, clock=clock)
    assert remote.fetches("lab") == 2


def test_remote_down_keeps_the_last_good_mirror_and_says_how_old(tmp_path, remote):
    settings, clock = _settings(tmp_path), Clock()
    instructor = WorkingCopy(tmp_path / "instructor")
    import subprocess

    subprocess.run(["git", "clone", "-q", remote.url("lab"), str(instructor.path)], check=True)
    instructor.commit_and_push({"week2.py": "print('week 2')\n"}, "Week 2")
    path, warning = mirror_for_start(remote.url("lab"), settings, clock=clock)
    assert path and warning == "" and "week2.py" in _files(Path(path))
    remote.stop()
    clock.now += 12 * 60
    path2, warning = mirror_for_start(remote.url("lab"), settings, clock=clock)
    assert path2 == path and "week2.py" in _files(Path(path))
    assert warning == "course materials as of 12 minutes ago: the course's git server did not answer"
    remote.start()


def test_no_mirror_yet_and_remote_down_means_no_mirror(tmp_path, remote):
    remote.stop()
    assert mirror_for_start(remote.url("lab"), _settings(tmp_path)) == ("", "")
    remote.start()


@pytest.mark.parametrize("url", ["file:///etc", "ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/x",
                                 "git://127.0.0.1:1/x.git\n", "https://user:secret@example.org/x.git"])
def test_hostile_urls_are_never_fetched(tmp_path, url):
    settings = _settings(tmp_path)
    assert ensure_mirror(url, settings) is None
    assert not settings.root.exists() or not any(settings.root.iterdir())


def test_a_repository_over_the_size_bound_is_not_mirrored(tmp_path, remote):
    settings = _settings(tmp_path, max_bytes=10)
    assert ensure_mirror(remote.url("lab"), settings) is None
    assert [p.name for p in settings.root.iterdir() if p.is_dir()] == []
