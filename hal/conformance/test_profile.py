"""hal.profile(): one record per command, with device time and a Perfetto trace."""

import json

import numpy as np

import hal


def test_records_per_command(device, tmp_path):
    x = device.empty((1 << 12,), np.float32)
    y = device.empty((1 << 12,), np.float32)
    with hal.profile() as prof:
        device.default_queue.fill(x, 1.0)
        device.default_queue.copy(y, x)
        y.numpy()
    kinds = [r.kind for r in prof.records]
    assert kinds[:2] == ["fill", "copy_d2d"] and "copy_d2h" in kinds
    for r in prof.records:
        assert r.device == device.spec and r.device_s >= 0 and r.wall_s >= 0
    path = tmp_path / "trace.json"
    prof.save(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == len(prof.records)


def test_no_records_outside_a_profile(device):
    with hal.profile() as prof:
        pass
    device.default_queue.fill(device.empty((8,), np.float32), 0.0)
    assert prof.records == []
