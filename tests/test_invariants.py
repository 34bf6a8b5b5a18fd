import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, init_batch, theory as th, train


def _spread(spec, traj_params_list):
    """Max change of every balance invariant between the initial and final weights."""
    a, b = (th.balance_invariants(spec, p) for p in traj_params_list)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.parametrize("L, Lf", [(4, 2), (3, 1)])
def test_gradient_flow_conserves_invariants(L, Lf):
    st = Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = NetworkSpec.fusion(L, Lf, width=5)
    p0 = init_batch(spec, [1], "normal", 0.1)
    traj = train(spec, st, p0, method="gf", lr=1.0, steps=300, record_every=300, stop_loss=None,
                 rtol=1e-11, atol=1e-14)
    scale = max(float(np.max(np.abs(v))) for v in th.balance_invariants(spec, p0).values())
    # The weights grow by O(1) while the invariants stay at their initial values.
    assert np.max(np.abs(traj.norms[0, -1] - traj.norms[0, 0])) > 0.3
    assert traj.final_loss[0] < 0.01 * traj.loss[0, 0]
    assert _spread(spec, [p0, traj.final_params]) < 1e-7 * max(scale, 1.0)


def test_gradient_descent_drift_is_first_order_in_lr():
    st = Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = NetworkSpec.fusion(4, 2, width=5)
    p0 = init_batch(spec, [2], "normal", 0.3)
    T, drifts, etas = 8.0, [], [0.02, 0.01, 0.005]
    for eta in etas:
        n = int(round(T / eta))
        traj = train(spec, st, p0, lr=eta, steps=n, record_every=n, stop_loss=None)
        drifts.append(_spread(spec, [p0, traj.final_params]))
    slope = np.polyfit(np.log(etas), np.log(drifts), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.15)


def test_invariant_names_and_norms():
    spec = NetworkSpec.fusion(4, 2, width=3)
    p = dln.init_params(spec, __import__("jax").random.PRNGKey(0), "normal", 1.0)
    inv = th.balance_invariants(spec, p)
    assert set(inv) == {"A:1-2", "B:1-2", "fusion", "post:3-4"}
    norms = th.invariants.norm_invariants(spec, p)
    W = [np.asarray(x) for x in (p.branches[0][0], p.branches[0][1])]
    assert norms["A:1-2"] == pytest.approx(np.sum(W[0] ** 2) - np.sum(W[1] ** 2))
    fused = sum(np.sum(np.asarray(b[-1]) ** 2) for b in p.branches)
    assert norms["fusion"] == pytest.approx(fused - np.sum(np.asarray(p.post[0]) ** 2))
    late = NetworkSpec.fusion(3, 3, width=3)
    assert "fusion" not in th.balance_invariants(
        late, dln.init_params(late, __import__("jax").random.PRNGKey(0), "normal", 1.0))


def test_frobenius_init_is_balanced_in_norm_on_average():
    # Eq. (41) at initialization: E‖W^{L_f+1}‖² = 2u0² = Σ_m E‖W_m^{L_f}‖².
    spec = NetworkSpec.fusion(4, 2, width=100)
    p = init_batch(spec, list(range(20)), "frobenius", 0.1)
    fusion = th.invariants.norm_invariants(spec, p)["fusion"]
    assert abs(np.mean(fusion)) < 0.1 * 0.02
