"""Pure tests of benchmarks/hub_load.py and benchmarks/hub_probe.py: the probe's samples and
windows, the cgroup memory arithmetic, the slow-callback summary, the loop-debug config, the
report and the command line. The probe process itself runs against a local HTTP server."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import sys
import threading
import time

import pytest

from benchmarks import hub_load, hub_probe
from benchmarks.hub_probe import API_ROOT, API_USER, Sample


def test_read_samples_skips_a_torn_last_line():
    text = "10.0 api 5.5 200\n10.05 user 7.25 200\n10.1 api 3\n10.2 user x 200\n"
    assert hub_probe.read_samples(text) == [Sample(10.0, "api", 5.5, 200), Sample(10.05, "user", 7.25, 200)]


def test_window_stats_takes_one_endpoint_inside_the_window_and_counts_failures_with_their_time():
    samples = [Sample(0.5, API_USER, 999.0, 200)]  # before the window: left out
    samples += [Sample(1 + i / 100, API_USER, float(i + 1), 200) for i in range(99)]  # 1..99 ms
    samples += [Sample(1.995, API_USER, 10000.0, 0)]  # no answer: counts, with its time
    samples += [Sample(1.5, API_ROOT, 5000.0, 200)]  # the other endpoint: left out
    samples += [Sample(2.0, API_USER, 4000.0, 200)]  # at the window's end: left out
    s = hub_probe.window_stats(samples, 1.0, 2.0, API_USER)
    assert s["samples"] == 100 and s["failed"] == 1
    assert s["p50"] == 50.5 and s["max"] == 10000.0
    assert 99 < s["p99"] < 10000


def test_window_stats_of_an_empty_window_says_none():
    assert hub_probe.window_stats([], 0, 1, API_ROOT) == {"p50": None, "p99": None, "max": None,
                                                          "samples": 0, "failed": 0}


def test_first_answer_after_a_restart_skips_refused_requests_and_earlier_ones():
    samples = [Sample(4.0, API_ROOT, 3.0, 200), Sample(5.0, API_ROOT, 1.0, 0), Sample(5.1, API_USER, 2.0, 200),
               Sample(5.5, API_ROOT, 500.0, 503), Sample(6.0, API_ROOT, 20.0, 200)]
    assert hub_probe.first_answer_after(samples, 4.5) == pytest.approx(6.02)
    assert hub_probe.first_answer_after(samples, 7.0) is None


def test_memory_v1_is_usage_minus_page_cache():
    stat = "cache 1000\nrss 5000\ntotal_cache 3000\ntotal_rss 7000\n"
    assert hub_probe.memory_v1("10000\n", stat) == 7000
    assert hub_probe.memory_v1("10000", "cache 4000\nrss 6000\n") == 6000  # no hierarchy totals
    assert hub_probe.memory_v1("100", "total_cache 300\n") == 0


def test_process_rss_of_this_process_and_of_none():
    assert hub_probe.process_rss(__import__("os").getpid()) > 1024 * 1024
    assert hub_probe.process_rss(2 ** 22 + 7) is None


LOG = """\
[I 2026-11-27 05:00:00 JupyterHub app] ok
[asyncio 2026-11-27 05:00:01] Executing <Task pending name='Task-12' coro=<GoldenSpawner.poll() running at /x/golden.py:663> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[_chain_future()] created at /y.py:1> took 0.250 seconds
[asyncio 2026-11-27 05:00:02] Executing <Task pending name='Task-99' coro=<GoldenSpawner.poll() running at /x/golden.py:663> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[_chain_future()] created at /y.py:1> took 0.150 seconds
[asyncio 2026-11-27 05:00:03] Executing <Handle IOLoop._run_callback(functools.par...0x7f12ab34c0>)) created at /z.py:9> took 0.600 seconds
"""


def test_slow_callbacks_group_by_what_ran_longest_total_first():
    found = hub_probe.slow_callbacks(LOG)
    assert [g["count"] for g in found] == [1, 2]
    assert found[0]["total_s"] == 0.6 and "IOLoop._run_callback" in found[0]["what"]
    assert found[1]["total_s"] == 0.4 and found[1]["max_s"] == 0.25
    assert "GoldenSpawner.poll()" in found[1]["what"] and "Task-" not in found[1]["what"]
    assert hub_probe.slow_callbacks("nothing slow here") == []


def test_loop_debug_config_turns_on_debug_mode_of_the_running_loop():
    async def inside_hub():
        exec(hub_probe.loop_debug_config(40), {})
        loop = asyncio.get_running_loop()
        return loop.get_debug(), loop.slow_callback_duration

    assert asyncio.run(inside_hub()) == (True, 0.04)


class _Answer(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).seen.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(200 if self.path == "/hub/api/" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_probe_process_sends_both_requests_with_the_token_and_writes_each_sample(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    try:
        with hub_load.Probe(api, "sekrit", "someone", tmp_path / "probe.txt") as probe:
            deadline = time.monotonic() + 60
            while len(probe.samples()) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
        found = probe.samples()
    finally:
        server.shutdown()
    assert {(s.endpoint, s.status) for s in found} == {(API_ROOT, 200), (API_USER, 404)}
    assert ("/hub/api/users/someone", "token sekrit") in _Answer.seen
    assert ("/hub/api/", "token sekrit") in _Answer.seen


def _result(kept: bool = True, debug: float = 0) -> dict:
    window = {"p50": 20.0, "p99": 150.0, "max": 1000.0, "samples": 300, "failed": 0}
    quiet = {"p50": 5.0, "p99": 9.0, "max": 12.0, "samples": 200, "failed": 0}
    latency = {"before": quiet, "burst": window, "after": quiet}
    return {"machine": {"cores": 2, "cpu": "AMD EPYC", "memory_gib": 23.5, "gpus": 0, "os": "Debian 12",
                        "kernel": "6", "docker": "20", "python": "3.11"},
            "students": 30, "template": "intro-python-cpu", "probe_ms": 50, "loop_debug_ms": debug,
            "latency_endpoint": "GET /hub/api/users/probe", "latency_ms": latency,
            "latency_ms_by_endpoint": {"GET /hub/api/": latency, "GET /hub/api/users/probe": latency},
            "burst": {"ok": 29, "makespan_s": 80.0},
            "idle_memory_mib": {"p50": 110.0, "max": 130.5, "hub_rss_mib": 150.0, "containers": 29,
                                "source": "cgroup v1 memory.usage_in_bytes - total_cache"},
            "restart": {"servers": 100, "stop_s": 1.0, "api_s": 5.5, "all_ready_s": 9.0, "all_kept": kept,
                        "template": "bh-stripped", "failed_starts": 0}}


def test_report_gives_ratios_to_the_target_and_the_machine():
    text = hub_load.format_report(_result())
    assert "2 cores (AMD EPYC)" in text
    assert "29/30 students" in text
    assert "p99 1.50x of the 100 ms target, max 2.00x of the 500 ms target" in text
    assert "p99 0.80x" in text  # 150 against the issue's 188 ms
    assert "p50 110.0 MiB, max 130.5 MiB; hub process RSS 150.0 MiB" in text
    assert "API answers after 5.5 s, every server answers through the proxy after 9.0 s; all kept running: yes" in text
    assert "asyncio debug" not in text


def test_report_says_when_a_server_was_lost_and_when_debug_mode_skews_latency():
    text = hub_load.format_report(_result(kept=False, debug=50))
    assert "all kept running: NO" in text
    assert "asyncio debug mode ON" in text


@pytest.mark.parametrize("argv, words", [
    (["--students", "0"], "--students must be 1 to 500"),
    (["--restart-servers", "-1"], "--restart-servers must be 0 to 500"),
    (["--port", "80"], "--port must be 1024 to 65532"),
    (["--prefix", "Bad-one"], "--prefix must be 1 to 16 lowercase letters"),
    (["--idle", "-3"], "must be 0 or more"),
])
def test_bad_arguments_are_refused_with_a_sentence(argv, words, capsys):
    with pytest.raises(SystemExit):
        hub_load.parse_args(argv)
    assert words in capsys.readouterr().err


def test_defaults_are_the_issues_sizes_and_this_helpers_ports():
    args = hub_load.parse_args([])
    assert (args.students, args.restart_servers, args.port, args.prefix) == (30, 100, 32000, "bh")


def test_loop_profile_config_writes_the_main_threads_profile_at_exit(tmp_path):
    import pstats
    import subprocess
    import sys

    out = tmp_path / "loop.pstats"
    program = hub_probe.loop_profile_config(str(out)) + (
        "def busy_handler():\n    return sum(i * i for i in range(10000))\nbusy_handler()\n")
    subprocess.run([sys.executable, "-c", program], check=True, timeout=120)
    assert any(name == "busy_handler" for (_, _, name) in pstats.Stats(str(out)).stats)


def test_the_gc_log_reports_only_collections_longer_than_asked():
    program = hub_probe.gc_log_config(0.0) + "import gc\ngc.collect()\n"
    quiet = hub_probe.gc_log_config(60_000.0) + "import gc\ngc.collect()\n"
    loud = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    silent = subprocess.run([sys.executable, "-c", quiet], capture_output=True, text=True, timeout=120)
    assert "[gc] generation 2 took" in loud.stderr
    assert "[gc]" not in silent.stderr


def test_the_benchmarks_token_is_trusted_unless_asked_to_hash_it():
    assert "trust_user_provided_tokens = True" in hub_probe.TRUST_BENCH_TOKEN
    assert hub_load.parse_args(["--hashed-token"]).hashed_token is True
