"""The metrics without a hub: start events recorded by the spawner's StartRecord, the collector
on a real SQLite database with rows → the values a scraper reads (parsed with prometheus_client's
text parser), the reason codes of failed starts, and the Grafana dashboard naming only metrics
the collector exposes."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import docker.errors
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub_ext.hubconfig import Settings, update_service
from hub_ext.paths import REPO_ROOT
from hub_ext.service.db import AuditEntry, StartEvent, UsageSession, open_database, utcnow
from hub_ext.usage import metrics
from spawner import start_events
from spawner.exits import start_refusal
from spawner.golden import StartFailed

DASHBOARD = REPO_ROOT / "docs" / "grafana-goldenhub.json"


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, from the text format."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'goldenhub.sqlite'}")


def add(db, *rows):
    with db() as s:
        s.add_all(rows)
        s.commit()


def test_collector_reports_the_rows_and_containers(db):
    now = utcnow()
    ok = dict(username="u", course="dl", template="dl-gpu", outcome="ok")
    add(db,
        # two successful starts of 3 s and 40 s; one refused over quota; one without a free GPU; one failed
        StartEvent(**ok, queued_at=now - timedelta(seconds=100), finished_at=now - timedelta(seconds=97)),
        StartEvent(**ok, queued_at=now - timedelta(seconds=100), finished_at=now - timedelta(seconds=60)),
        StartEvent(username="q", course="dl", template="dl-gpu", outcome="refused", reason="quota",
                   queued_at=now, finished_at=now),
        StartEvent(username="g", course="dl", template="dl-gpu", outcome="refused", reason="no-gpu",
                   queued_at=now, finished_at=now),
        StartEvent(username="f", course="py", template="py-cpu", outcome="failed", reason="image-missing",
                   queued_at=now, finished_at=now),
        # waiting: one now, one left behind by a hub that died an hour ago (not counted), one admitted
        StartEvent(username="w", course="py", template="py-cpu", queued_at=now - timedelta(seconds=5)),
        StartEvent(username="x", course="py", template="py-cpu", queued_at=now - timedelta(hours=1)),
        StartEvent(username="y", course="py", template="py-cpu", queued_at=now, admitted_at=now),
        AuditEntry(actor="prof", action="reset", target_user="a", course="py", result="ok"),
        AuditEntry(actor="prof", action="reset", target_user="b", course="py", result="ok"),
        AuditEntry(actor="prof", action="reset", target_user="c", course="py", result="refused"),
        AuditEntry(actor="culler", action="cull", target_user="d", course="dl", result="ok"),
        AuditEntry(actor="prof", action="restore", target_user="a", course="py", result="ok"),
        # 2 GPUs for 1.5 h (closed) + 1 GPU open for 30 min; a CPU session counts no GPU-hours
        UsageSession(container_id="c1", username="a", course="dl", template="dl-gpu", gpus="G0,G1",
                     started_at=now - timedelta(hours=3), last_seen=now - timedelta(hours=1.5),
                     ended_at=now - timedelta(hours=1.5), end_reason="stop"),
        UsageSession(container_id="c2", username="b", course="dl", template="dl-gpu", gpus="G2",
                     started_at=now - timedelta(minutes=30), last_seen=now),
        UsageSession(container_id="c3", username="c", course="py", template="py-cpu", gpus="cpu",
                     started_at=now - timedelta(hours=2), last_seen=now),
    )
    running = [("dl", "dl-gpu", ("G2",)), ("py", "py-cpu", ()), ("py", "py-cpu", ())]
    facts = metrics.read_database(db, now, metrics.Facts(running=running, inventory=["G0", "G1", "G2", "G3"]))
    got = samples(metrics.exposition(facts))

    assert got[("goldenhub_servers_running", (("course", "py"), ("template", "py-cpu")))] == 2
    assert got[("goldenhub_servers_running", (("course", "dl"), ("template", "dl-gpu")))] == 1
    assert got[("goldenhub_gpus_allocated", ())] == 1
    assert got[("goldenhub_gpus_free", ())] == 3
    assert got[("goldenhub_gpus_total", ())] == 4
    assert got[("goldenhub_start_queue_length", ())] == 1
    dl = (("template", "dl-gpu"),)
    assert got[("goldenhub_start_duration_seconds_count", dl)] == 2
    assert got[("goldenhub_start_duration_seconds_sum", dl)] == pytest.approx(43, abs=0.01)
    assert got[("goldenhub_start_duration_seconds_bucket", (("le", "5.0"),) + dl)] == 1
    assert got[("goldenhub_start_duration_seconds_bucket", (("le", "60.0"),) + dl)] == 2
    assert got[("goldenhub_spawn_failures_total", (("outcome", "refused"), ("reason", "quota")))] == 1
    assert got[("goldenhub_spawn_failures_total", (("outcome", "refused"), ("reason", "no-gpu")))] == 1
    assert got[("goldenhub_spawn_failures_total", (("outcome", "failed"), ("reason", "image-missing")))] == 1
    assert got[("goldenhub_quota_refusals_total", (("course", "dl"),))] == 1
    assert got[("goldenhub_resets_total", (("course", "py"), ("result", "ok")))] == 2
    assert got[("goldenhub_resets_total", (("course", "py"), ("result", "refused")))] == 1
    assert got[("goldenhub_culls_total", (("course", "dl"),))] == 1
    assert got[("goldenhub_gpu_hours_total", (("course", "dl"),))] == pytest.approx(3.5, abs=0.001)
    assert ("goldenhub_gpu_hours_total", (("course", "py"),)) not in got or \
        got[("goldenhub_gpu_hours_total", (("course", "py"),))] == 0


def test_gpus_free_is_absent_until_the_hub_published_its_inventory(db):
    facts = metrics.read_database(db, utcnow(), metrics.Facts(running=[("dl", "dl-gpu", ("G0",))]))
    got = samples(metrics.exposition(facts))
    assert got[("goldenhub_gpus_allocated", ())] == 1
    assert ("goldenhub_gpus_free", ()) not in got


def test_inventory_file_round_trip(tmp_path):
    assert start_events.read_inventory(tmp_path) is None
    start_events.publish_inventory(tmp_path, ["GPU-a", "GPU-b"])
    assert start_events.read_inventory(tmp_path) == ["GPU-a", "GPU-b"]
    (tmp_path / start_events.INVENTORY_FILE).write_text("{not json")
    assert start_events.read_inventory(tmp_path) is None


@pytest.mark.parametrize("error, reset, expected", [
    (None, False, ("ok", "")),
    (start_refusal(403, "over quota", reason="quota"), False, ("refused", "quota")),
    (start_refusal(503, "no GPU", reason="no-gpu"), False, ("refused", "no-gpu")),
    (start_refusal(400, "no such template"), False, ("refused", "other")),
    (StartFailed("the image is not here", "image-missing"), False, ("failed", "image-missing")),
    (StartFailed("did not answer", "timeout"), False, ("failed", "timeout")),
    (StartFailed("something"), False, ("failed", "other")),
    (docker.errors.APIError("500 Server Error"), False, ("failed", "docker")),
    (asyncio.CancelledError(), False, ("failed", "cancelled")),
    (asyncio.CancelledError(), True, ("failed", "reset")),
    (RuntimeError("boom"), False, ("failed", "other")),
])
def test_classify(error, reset, expected):
    assert start_events.classify(error, reset) == expected


def test_start_record_writes_one_row_through_a_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'goldenhub.sqlite'}"
    db = open_database(url)

    async def start():
        record = start_events.StartRecord(url, "alice/")
        await record.queued("alice", "", "dl", "dl-gpu")
        await record.admitted()
        await record.finished(start_refusal(403, "over quota", reason="quota"))
        await record.finished(None)  # the start's `finally`: its end is already written

    asyncio.run(start())
    with db() as s:
        rows = s.query(StartEvent).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.username, row.course, row.template, row.outcome, row.reason) == ("alice", "dl", "dl-gpu",
                                                                                 "refused", "quota")
    assert row.admitted_at is not None and row.finished_at is not None


def test_start_record_never_breaks_a_start(tmp_path, caplog):
    (tmp_path / "not-a-db").mkdir()

    async def start():
        record = start_events.StartRecord(f"sqlite:///{tmp_path / 'not-a-db'}", "bob/")
        await record.queued("bob", "", "dl", "dl-gpu")
        await record.admitted()
        await record.finished(None)
        return record.event_id

    assert asyncio.run(start()) is None
    assert "Could not record the queueing of the start of bob/" in caplog.text


def test_metrics_public_setting_reaches_the_service(tmp_path):
    from traitlets.config import Config

    for value, expected in ((None, "0"), ("1", "1"), ("0", "0")):
        env = {"GOLDENHUB_STATE_DIR": str(tmp_path)} | ({"GOLDENHUB_METRICS_PUBLIC": value} if value else {})
        s = Settings.from_env(env)
        c = Config()
        update_service(c, s)
        assert c.JupyterHub.services[0]["environment"]["GOLDENHUB_METRICS_PUBLIC"] == expected
        assert "custom:goldenhub:metrics" in c.JupyterHub.custom_scopes


def test_dashboard_names_only_metrics_the_collector_exposes(db):
    now = utcnow()
    # rows of every kind, so that every family has samples (a histogram's _bucket/_sum/_count among them)
    add(db, StartEvent(username="u", course="c", template="t", outcome="ok", queued_at=now, finished_at=now),
        StartEvent(username="u", course="c", template="t", outcome="refused", reason="quota", queued_at=now,
                   finished_at=now),
        AuditEntry(actor="a", action="reset", target_user="u", course="c", result="ok"),
        AuditEntry(actor="a", action="cull", target_user="u", course="c", result="ok"),
        UsageSession(container_id="x", username="u", course="c", template="t", gpus="G0", started_at=now,
                     last_seen=now))
    facts = metrics.read_database(db, now, metrics.Facts(running=[("c", "t", ("G0",))], inventory=["G0"]))
    exposed = {name for name, _ in samples(metrics.exposition(facts))}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {name for e in exprs for name in re.findall(r"\bgoldenhub_[a-z_]+", e)}
    assert named, "the dashboard queries no goldenhub metric"
    assert named <= exposed, f"the dashboard names metrics that do not exist: {sorted(named - exposed)}"
    # and every metric family is on the dashboard
    families = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in exposed}
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in named}
    assert families <= shown, f"no panel for {sorted(families - shown)}"
