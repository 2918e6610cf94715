"""Idle culling's decisions without a hub: the keeper's plan (busy GPUs kept, warnings,
culls recorded), the culler hook's per-template limits and the stop note the student reads,
and the hub configuration that runs jupyterhub-idle-culler."""

import asyncio
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from traitlets.config import Config

from hub_ext import i18n
from hub_ext.homes.stop_notes import take_note
from hub_ext.hubconfig import Settings, update_service
from hub_ext.usage import keeper
from hub_ext.usage.cull_hook import TimeoutBook, limit_seconds, make_arbiter
from hub_ext.usage.culling_config import update_culling

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def run(template="gpu", gpus=("0",), idle=timedelta(0), user="maya"):
    return keeper.Running(user, "", template, tuple(gpus), NOW - idle)


def plan(running, busy=(), warned=None, timeouts=None):
    return keeper.decide(running, set(busy), timeouts or {"gpu": 30, "cpu": 240, "forever": 0}, 240,
                         warned or {}, NOW, 10 * MIN, MIN)


def test_a_server_busy_on_its_gpu_is_kept_and_never_warned_however_long_its_browser_is_gone():
    p = plan([run(idle=timedelta(hours=9))], busy={"0"})
    assert [r.user for r in p.activity] == ["maya"]
    assert p.warn == [] and p.culled == []


def test_an_idle_gpu_server_is_warned_ten_minutes_before_its_due_time():
    assert plan([run(idle=19 * MIN)]).warn == []
    (w,) = plan([run(idle=21 * MIN)]).warn
    assert (w.user, w.due_at, w.idle_minutes) == ("maya", NOW + 9 * MIN, 30)


def test_busy_gpu_or_activity_after_a_warning_removes_it():
    warned = {("maya", ""): NOW + 5 * MIN}
    assert plan([run(idle=25 * MIN)], busy={"0"}, warned=warned).clear == [("maya", "")]
    assert plan([run(idle=MIN)], warned=warned).clear == [("maya", "")]


def test_another_gpu_busy_does_not_keep_a_server_that_holds_an_idle_one():
    assert plan([run(gpus=("1",), idle=25 * MIN)], busy={"0"}).activity == []


def test_zero_never_culls_and_an_unknown_template_gets_the_platform_default():
    assert plan([run(template="forever", idle=timedelta(days=30))]).warn == []
    assert plan([run(template="gone", idle=200 * MIN)]).warn == []
    (w,) = plan([run(template="gone", idle=235 * MIN)]).warn
    assert w.idle_minutes == 240


def test_a_warned_server_gone_after_its_due_time_was_culled_before_it_was_stopped_by_hand():
    assert plan([], warned={("maya", ""): NOW - MIN}).culled == [("maya", "")]
    early = plan([], warned={("maya", ""): NOW + 5 * MIN})
    assert early.culled == [] and early.clear == [("maya", "")]


def test_running_servers_come_from_the_hubs_models_with_their_gpus_and_template():
    users = [{"name": "maya", "servers": {"": {
        "ready": True, "pending": None, "last_activity": "2026-11-26T11:40:00.123Z",
        "user_options": {"template": "gpu"}, "state": {"gpus": ["GPU-a"]}}}},
        {"name": "li", "servers": {"": {"ready": False, "pending": "spawn", "last_activity": None}}}]
    (r,) = keeper.running_servers(users)
    assert (r.user, r.template, r.gpus) == ("maya", "gpu", ("GPU-a",))
    assert r.last_activity == datetime(2026, 11, 26, 11, 40, 0, 123000, tzinfo=timezone.utc)


def test_the_hooks_limit_per_template():
    assert limit_seconds("gpu", {"gpu": 30}, 60, 999) == 1800
    assert limit_seconds("gpu", {"gpu": 0}, 60, 999) is None
    assert limit_seconds("gone", {"gpu": 30}, 60, 999) == 999


@pytest.fixture
def culler_settings(tmp_path):
    courses = tmp_path / "courses"
    courses.mkdir()
    (courses / "c.yaml").write_text(textwrap.dedent("""\
        id: c
        title: C
        templates:
          - id: c-cpu
            title: C (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
        """))
    s = Settings(state_dir=tmp_path / "state", courses_dir=courses)
    s.cull_unit_seconds = 1  # the CPU default, 240 "minutes", is 240 s here
    return s


def test_the_hook_culls_past_the_templates_limit_and_leaves_the_student_the_reason(culler_settings):
    s = culler_settings
    arbiter = make_arbiter(s, TimeoutBook(s))
    server = {"full_name": "maya/", "user_options": {"template": "c-cpu"}}
    i18n.use("en")
    try:
        assert asyncio.run(arbiter(inactive=timedelta(seconds=239), inactive_limit=5, server=server)) is False
        assert take_note(s.state_dir, "maya") == ""
        assert asyncio.run(arbiter(inactive=timedelta(seconds=240), inactive_limit=99999, server=server)) is True
        reason = take_note(s.state_dir, "maya")
        assert "stopped after 240 minutes idle" in reason and "files are kept" in reason
        i18n.use("zh_CN")  # the reason in the platform's language: here Chinese
        assert asyncio.run(arbiter(inactive=timedelta(seconds=240), inactive_limit=99999, server=server)) is True
        assert take_note(s.state_dir, "maya") == ("你的服务器空闲 240 分钟后已被停止；你的文件会保留。"
                                                  "需要时请重新启动。")
        i18n.use("en")
        # a server of a template the catalog no longer has: the culler's own --timeout
        gone = {"full_name": "li/", "user_options": {"template": "deleted"}}
        assert asyncio.run(arbiter(inactive=timedelta(seconds=6), inactive_limit=5, server=gone)) is True
    finally:
        i18n.use("en")


def test_the_culler_runs_as_a_hub_service_with_only_the_scopes_it_uses():
    c = Config()
    s = Settings.from_env({"GOLDENHUB_CULL_EVERY": "7", "GOLDENHUB_GPU_LOAD_FILE": "/tmp/fed.json"})
    update_service(c, s)
    update_culling(c, s)
    culler = next(svc for svc in c.JupyterHub.services if svc["name"] == "idle-culler")
    assert "--cull-every=7" in culler["command"] and "--timeout=14400" in culler["command"]
    assert culler["environment"]["GOLDENHUB_GPU_LOAD_FILE"] == "/tmp/fed.json"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert sorted(roles["idle-culler"]["scopes"]) == sorted(
        ["list:users", "read:users:activity", "read:servers", "delete:servers"])
    assert "users:activity" in roles["goldenhub-service"]["scopes"]


@pytest.mark.parametrize("name,value", [("GOLDENHUB_CULL_EVERY", "0"), ("GOLDENHUB_BUSY_UTILISATION", "101"),
                                         ("GOLDENHUB_CULL_WARN_MINUTES", "ten")])
def test_a_culling_setting_out_of_range_stops_the_start_with_a_sentence(name, value):
    with pytest.raises(ValueError, match=f"{name} is '{value}'; allowed: a whole number from"):
        Settings.from_env({name: value})
