"""hal.profile(): one record per command, each with its device time, and a Perfetto trace."""

import json

import numpy as np

import hal
from hal.kernel.samples import saxpy


def test_records_per_command(device, tmp_path):
    n = 1 << 12
    x = device.empty((n,), np.float32)
    y = device.empty((n,), np.float32)
    q = device.default_queue
    with hal.profile() as prof:
        q.fill(x, 1.0)
        q.copy(y, x)
        q.copy(x, np.arange(n, dtype=np.float32))
        if device.supports("kernels"):
            saxpy[n // 64, 64, q](2.0, x, y, n)
        y.numpy()
    kinds = [r.kind for r in prof.records]
    assert kinds[:3] == ["fill", "copy_d2d", "copy_h2d"] and kinds[-1] == "copy_d2h"
    assert ("kernel" in kinds) == device.supports("kernels")
    for r in prof.records:
        assert r.device == device.spec and r.wall_s >= 0
        assert r.device_s > 0, (f"the {r.kind} record ({r.nbytes} bytes) has device_s = {r.device_s}: a backend "
                                "fills CommandTrace.device_s before the queue's synchronize returns")
    path = tmp_path / "trace.json"
    prof.save(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == len(prof.records)
