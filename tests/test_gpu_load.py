"""The GPU-load boundary: fed readings are checked like any input; without NVML there are no
readings and no exception; busy means kernels running (or, on a MIG slice, a process)."""

import json

import pytest

from hub_ext.usage.gpu_load import FedReader, GPULoad, NVMLReader, MAX_FED_BYTES


def test_fed_readings_are_read_and_filtered(tmp_path):
    path = tmp_path / "load.json"
    path.write_text(json.dumps({"0": {"utilisation": 93, "memory_used_mib": 2048, "processes": 1},
                                "MIG-a": {"memory_used_mib": 10, "processes": 0}}))
    readings = FedReader(path).read(["0", "MIG-a", "1"])
    assert readings["0"] == GPULoad("0", 93, 2048, 1)
    assert readings["0"].busy(10) and not GPULoad("0", 3, 0, 0).busy(10)
    assert readings["MIG-a"].utilisation is None and not readings["MIG-a"].busy(10)
    assert "1" not in readings
    assert FedReader(tmp_path / "absent.json").read() == {}


@pytest.mark.parametrize("content, says", [
    ({"0": {"utilisation": 101}}, "from 0 to 100"),
    ({"0": {"utilisation": True}}, "whole number"),
    ({"0": {"utilisation": -1}}, "from 0 to 100"),
    ({"0": 5}, "must be an object"),
    ([1], "JSON object"),
])
def test_bad_fed_readings_are_refused_with_a_sentence(tmp_path, content, says):
    path = tmp_path / "load.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=says):
        FedReader(path).read()


def test_an_oversized_feed_is_refused(tmp_path):
    path = tmp_path / "load.json"
    path.write_text(" " * (MAX_FED_BYTES + 1))
    with pytest.raises(ValueError, match="more than"):
        FedReader(path).read()


def test_without_a_driver_there_are_no_readings():
    # this machine has nvidia-ml-py but no NVIDIA driver: NVML cannot initialise
    assert NVMLReader().read() == {}
    assert NVMLReader().read(["0"]) == {}
