"""The sample datasets: the iris sample is Fisher's real data, and `goldenhub prepare` brings
an old synthetic copy up to it without ever replacing a file someone changed."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter

from hub_ext import samples
from hub_ext.paths import REPO_ROOT

IRIS = REPO_ROOT / "courses" / "datasets" / "iris"


def test_the_iris_sample_is_fishers_data_with_its_source_named():
    rows = list(csv.DictReader(IRIS.joinpath("iris.csv").open()))
    assert len(rows) == 150
    assert Counter(r["species"] for r in rows) == {"setosa": 50, "versicolor": 50, "virginica": 50}
    widths = [float(r["petal_width"]) for r in rows]
    assert min(widths) == 0.1 and max(widths) == 2.5  # Fisher's range; the synthetic copy went negative
    assert round(sum(float(r["sepal_length"]) for r in rows) / 150, 2) == 5.84
    assert "scikit-learn" in IRIS.joinpath("README.txt").read_text()


def test_prepare_replaces_the_old_synthetic_copy_and_keeps_changed_files(tmp_path, monkeypatch):
    synthetic = b"sepal_length,sepal_width,petal_length,petal_width,species\n5.4,3.8,1.5,-0.0,setosa\n"
    monkeypatch.setitem(samples.SUPERSEDED_SAMPLES, "iris/iris.csv", {hashlib.sha256(synthetic).hexdigest()})
    old = tmp_path / "datasets" / "iris"
    old.mkdir(parents=True)
    old.joinpath("iris.csv").write_bytes(synthetic)
    changed = samples.ensure_datasets(tmp_path / "datasets")
    assert "iris/iris.csv" in changed and "iris/README.txt" in changed
    assert old.joinpath("iris.csv").read_bytes() == IRIS.joinpath("iris.csv").read_bytes()
    assert (tmp_path / "datasets" / "mnist-sample").is_dir()  # a missing sample is installed

    mine = b"sepal_length\n9.9\n"  # an instructor's own file under the sample's name
    old.joinpath("iris.csv").write_bytes(mine)
    assert samples.ensure_datasets(tmp_path / "datasets") == []
    assert old.joinpath("iris.csv").read_bytes() == mine
