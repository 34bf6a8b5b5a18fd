"""A small sweep run in a subprocess by tests/test_sweep.py (sharding, processes, resume)."""
import os
import sys

mode, out = sys.argv[1], sys.argv[2]
if mode == "shard4":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import numpy as np  # noqa: E402

import dlnfusion as dln  # noqa: E402
from dlnfusion.sweep import Sweep, Train, init_distributed  # noqa: E402

if mode.startswith("proc"):
    init_distributed(f"127.0.0.1:{sys.argv[3]}", 2, int(mode[-1]))


def stats(rho):
    return dln.Stats.scalar_toy(2.0, 1.0, rho)


def network(fusion_layer):
    return dln.NetworkSpec.fusion(2, fusion_layer, width=20)


sweep = Sweep(grid={"fusion_layer": [1, 2], "rho": np.linspace(-0.6, 0.6, 3)},
              runner=Train(stats, network), fixed={"lr": 0.04, "scale": 1e-6, "steps": 4000,
                                      "record_every": 20}, seeds=[0, 1])
if mode == "killed":
    # The process is killed (SIGKILL: no clean-up, no exception handling) right after its
    # second chunk has been written, as an interrupted sweep would be.
    import signal
    import dlnfusion.sweep.engine as sw
    original, written = sw._atomic_save, []

    def save_then_die(path, arrays):
        original(path, arrays)
        written.append(path)
        if len(written) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    sw._atomic_save = save_then_die
sweep.run(out, chunk_size=4 if mode != "one" else None)
print("done", flush=True)
