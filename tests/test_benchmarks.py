"""The benchmarks run end to end: spawn with both spawners, one real hub each, one student each;
publish in its quick mode (no cold build), with its own registry."""

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
    for kind in ("stripped", "stock"):  # golden is the stripped side's old name
        assert results[kind]["ok"] == 1, results[kind]["outcomes"]
        assert results[kind]["p50"] > 0 and results[kind]["cpu_s_per_start"] > 0
    assert "stripped: 1/1 ok" in report and "stock: 1/1 ok" in report
    assert "makespan ratios at N=1: stripped/stock " in report


def test_publish_benchmark_quick_publishes_three_versions_and_rolls_back(tmp_path, capsys):
    from benchmarks import publish

    out = tmp_path / "publish.json"
    # Quick: no cold build. Own registry, state and name prefix, so it touches nothing shared.
    code = publish.main(["--quick", "--prefix", "tbpub", "--json", str(out)])
    report = capsys.readouterr().out
    assert code == 0, report
    rows = {r["case"][:3]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"(1)", "(b)", "(c)", "(d)"}
    # The first publish sends the whole image; a courseware-only change reuses every layer.
    assert rows["(1)"]["pushed"] > 100 * 2**20 > rows["(c)"]["pushed"]
    assert "| (d) rollback to version 1 |" in report
    assert "goal: rollback effective for the next start" in report
