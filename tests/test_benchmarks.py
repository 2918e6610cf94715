"""The spawn benchmark runs end to end: both spawners, one real hub each, one student each."""

import json

import pytest

from benchmarks import spawn

pytestmark = pytest.mark.integration


def test_spawn_benchmark_starts_one_server_on_each_side_and_reports_the_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    # Own ports and name prefix, so it never touches a full benchmark or the shared test hub.
    code = spawn.main(["--sizes", "1", "--spawners", "golden,stock", "--json", str(out),
                       "--port", "18500", "--prefix", "tb", "--deadline", "60"])
    report = capsys.readouterr().out
    assert code == 0, report
    results = {r["spawner"]: r for r in json.loads(out.read_text())["results"]}
    for kind in ("golden", "stock"):
        assert results[kind]["ok"] == 1, results[kind]["outcomes"]
        assert results[kind]["p50"] > 0 and results[kind]["cpu_s_per_start"] > 0
    assert "golden: 1/1 ok" in report and "stock: 1/1 ok" in report
    assert "ratio golden/stock N=1: p50 " in report
