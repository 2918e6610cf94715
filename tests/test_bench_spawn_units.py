"""benchmarks/spawn.py's pure parts: the phase marks read from container and hub logs and
Docker's times, the phases they make, percentiles, the JSON contract benchmarks/report.py
reads, the printed tables and the command line. No hub, no Docker."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from benchmarks import phases, spawn
from benchmarks.spawn import Outcome, SizeResult


def test_container_marks_are_read_from_the_startup_scripts_lines_only():
    log = "\n".join([
        "goldenhub-phase script 1700000000.100000000",
        "goldenhub: courseware synced into ~/intro-python",
        "goldenhub-phase courseware 1700000000.25",
        "a student's print: goldenhub-phase server 1",  # not at the start of a line
        "goldenhub-phase server 1700000003.5",
        "goldenhub-phase server 1700000099",  # a second server line does not move the first
        "goldenhub-phase evil 1700000000",
        "goldenhub-phase script 17e9",
    ])
    assert phases.container_marks(log) == {"script": 1700000000.1, "courseware": 1700000000.25,
                                           "server": 1700000003.5}
    assert phases.container_marks("") == {}


def test_branded_marks_come_from_the_hub_log_line_of_each_container():
    log = "\n".join([
        "[I 2026-11-27 05:14:17.123 JupyterHub dockerspawner:1319] Created container bsreal-n1u000",
        "[I 2026-11-27 05:14:17.900 JupyterHub golden:570] goldenhub-phase branded bsreal-n1u000 1700000001.250000",
        "[I 2026-11-27 05:14:18.000 JupyterHub golden:570] goldenhub-phase branded bsreal-n1u001 1700000002.000000",
        "[I 2026-11-27 05:20:00.000 JupyterHub golden:570] goldenhub-phase branded bsreal-n1u000 1700000100.000000",
    ])
    assert phases.branded_marks(log) == {"bsreal-n1u000": 1700000100.0, "bsreal-n1u001": 1700000002.0}


def test_docker_times_keep_microseconds_and_refuse_the_zero_time_and_garbage():
    assert phases.docker_time("2026-11-27T05:14:17.123456789Z") == pytest.approx(
        datetime(2026, 11, 27, 5, 14, 17, 123456, tzinfo=timezone.utc).timestamp())
    assert phases.docker_time("2026-11-27T06:14:17+01:00") == phases.docker_time("2026-11-27T05:14:17Z")
    assert phases.docker_time("0001-01-01T00:00:00Z") is None
    assert phases.docker_time("yesterday") is None
    assert phases.docker_time("") is None


def test_start_event_times_from_sqlite_are_utc():
    naive = datetime.fromisoformat("2026-11-27 05:14:17.500000")
    assert phases.as_epoch(naive) == datetime(2026, 11, 27, 5, 14, 17, 500000, tzinfo=timezone.utc).timestamp()
    assert phases.as_epoch(None) is None


GOLDEN_MARKS = {"t0": 100.0, "queued": 100.2, "admitted": 103.2, "created": 104.0, "branded": 104.5,
                "started": 104.8, "script": 105.0, "courseware": 105.1, "server": 106.1, "ready": 109.1}


def test_phases_of_a_real_start_add_up_to_its_time_to_notebook():
    p = phases.phases_from_marks(GOLDEN_MARKS)
    assert p == pytest.approx({"hub": 0.2, "queue": 3.0, "docker": 0.8 + 0.5, "branding": 0.5,
                               "courseware": 1.0, "server": 3.0})
    script_to_courseware = 0.1  # the home check: in no phase
    assert sum(p.values()) + script_to_courseware == pytest.approx(GOLDEN_MARKS["ready"] - GOLDEN_MARKS["t0"])


def test_a_start_without_courseware_has_no_courseware_phase():
    marks = {k: v for k, v in GOLDEN_MARKS.items() if k != "courseware"}
    p = phases.phases_from_marks(marks)
    assert p["courseware"] is None and p["server"] == pytest.approx(3.0)


def test_stock_phases_use_dockers_times_only():
    p = phases.phases_from_marks({"t0": 10.0, "created": 11.0, "started": 11.5, "ready": 15.5})
    assert p == pytest.approx({"hub": 1.0, "queue": None, "docker": 0.5, "branding": None,
                               "courseware": None, "server": 4.0})


def test_percentile_interpolates_between_ranks():
    assert phases.percentile([], 0.5) is None
    assert phases.percentile([7.0], 0.95) == 7.0
    assert phases.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert phases.percentile([float(i) for i in range(1, 101)], 0.95) == pytest.approx(95.05)


def test_phase_summary_is_the_median_of_successful_starts_with_cpu_where_measured():
    starts = [phases.phases_from_marks(GOLDEN_MARKS),
              phases.phases_from_marks({**GOLDEN_MARKS, "ready": 111.1})]
    summary = phases.summarize_phases(starts, hub_cpu_per_start=0.8, container_cpu_per_start=2.5)
    assert set(summary) == set(phases.PHASES)
    assert summary["server"] == {"p50_s": 4.0, "cpu_s": 2.5}
    assert summary["hub"] == {"p50_s": 0.2, "cpu_s": 0.8}
    assert summary["queue"]["cpu_s"] is None
    assert phases.summarize_phases([], None, None)["courseware"] == {"p50_s": None, "cpu_s": None}


def _result(kind: str, n: int, makespan: float) -> SizeResult:
    ok = Outcome("n1u000", ok=True, seconds=makespan, container_cpu_s=2.0, marks=dict(GOLDEN_MARKS),
                 phases=phases.phases_from_marks(GOLDEN_MARKS))
    return SizeResult(kind, n, ok=1, p50=makespan, p95=makespan, max=makespan, makespan=makespan,
                      cpu_s_per_start=2.5,
                      phases=phases.summarize_phases([ok.phases], 0.5, 2.0), outcomes=[ok])


def test_the_json_keeps_the_contract_of_report_py():
    machine = {"cores": 2, "cpu": "x", "memory_gib": 8.0, "kernel": "k", "os": "o", "docker": "d",
               "python": "3.11", "gpus": 0}
    doc = json.loads(json.dumps(phases.make_json(machine, "img", [1], [spawn.asdict(_result("real", 1, 9.0))])))
    assert set(doc) == {"machine", "image", "sizes", "results"}
    assert doc["machine"] == machine and doc["image"] == "img" and doc["sizes"] == [1]
    (r,) = doc["results"]
    assert set(r) == {"spawner", "n", "ok", "p50", "p95", "max", "makespan", "cpu_s_per_start", "phases",
                      "outcomes"}
    assert r["spawner"] == "real" and r["n"] == 1 and r["ok"] == 1
    assert set(r["phases"]) == set(phases.PHASES)
    assert all(set(v) == {"p50_s", "cpu_s"} for v in r["phases"].values())
    assert r["outcomes"][0]["user"] == "n1u000"


def test_the_report_prints_the_machine_each_side_the_ratios_and_the_phases():
    machine = {"cores": 2, "cpu": "Test CPU", "memory_gib": 8.0, "kernel": "k", "os": "o", "docker": "d",
               "python": "3.11", "gpus": 0}
    results = [_result("stripped", 30, 80.0), _result("real", 30, 88.0), _result("stock", 30, 160.0)]
    text = spawn.format_report(machine, "img", results)
    assert "2 cores (Test CPU)" in text
    assert "real: 1/30 ok" in text
    assert "makespan ratios at N=30: real/stripped 1.10x  real/stock 0.55x  stripped/stock 0.50x" in text
    phase_row = next(line for line in text.splitlines() if line.startswith("real ") and "3.0" in line)
    assert phase_row.split()[2:] == ["0.2", "3.0", "1.3", "0.5", "1.0", "3.0", "0.50", "2.00"]


def test_a_missing_side_leaves_its_ratios_out():
    text = "\n".join(phases.format_sides([spawn.asdict(_result("real", 1, 5.0))]))
    assert "makespan ratios" not in text and "real: 1/1 ok" in text


def test_command_line_sides_sizes_and_the_golden_alias():
    args = spawn.parse_args(["--spawners", "golden,real,stock", "--sizes", "1,10", "--port", "31000",
                             "--prefix", "bs"])
    assert args.spawners == ["stripped", "real", "stock"] and args.sizes == [1, 10]
    assert spawn.parse_args([]).spawners == ["stripped", "real", "stock"]
    assert spawn.parse_args(["--spawners", "stripped,golden"]).spawners == ["stripped"]
    sides = [spawn.make_side(k, "img", "bs", 31000) for k in ("stripped", "real", "stock")]
    assert [(s.prefix, s.port) for s in sides] == [("bsstr", 31000), ("bsreal", 31100), ("bsstock", 31200)]
    assert sides[1].spawn_options == {"template": "intro-python-cpu"}


@pytest.mark.parametrize("argv, sentence", [
    (["--spawners", "kube"], "--spawners takes stripped (or golden), real and/or stock, got kube"),
    (["--spawners", ","], "--spawners takes stripped (or golden), real and/or stock, got nothing"),
    (["--sizes", "0"], "--sizes needs at least one size, each 1 or more"),
    (["--sizes", "ten"], "--sizes must be whole numbers separated by commas, got 'ten'"),
])
def test_command_line_refuses_what_it_cannot_run(argv, sentence, capsys):
    with pytest.raises(SystemExit) as e:
        spawn.parse_args(argv)
    assert e.value.code == 2
    assert sentence in capsys.readouterr().err


def test_the_report_warns_when_the_image_was_rebuilt_during_the_run():
    machine = {"cores": 2, "cpu": "c", "memory_gib": 8.0, "kernel": "k", "os": "o", "docker": "d",
               "python": "3.11", "gpus": 0}
    a, b = _result("stripped", 1, 5.0), _result("real", 1, 6.0)
    a.outcomes[0].image_id, b.outcomes[0].image_id = "sha256:aaaa", "sha256:aaaa"
    assert "WARNING" not in spawn.format_report(machine, "img", [a, b])
    b.outcomes[0].image_id = "sha256:bbbb"
    assert "WARNING: img changed during the run (sha256:aaaa, sha256:bbbb)" in spawn.format_report(machine, "img", [a, b])
