from dataclasses import replace

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import dlnfusion as dln
from dlnfusion import plot, theory as th


@pytest.mark.parametrize("L, Lf", [(2, 1), (2, 2), (3, 1), (4, 3)])
def test_reduced_flow_follows_balanced_gradient_flow(L, Lf):
    """Balanced aligned weights stay balanced and aligned: the total weights of the full
    network follow the 2-D reduced flow (integrated independently with scipy)."""
    st = dln.Stats.scalar_toy(1.5, 1.0, 0.4)
    spec = dln.NetworkSpec.fusion(L, Lf, width=6)
    scale = 0.3
    traj = dln.simulate(spec, st, seeds=[0], scheme="balanced", scale=scale, method="gf",
                        lr=1.0, steps=40, record_every=1, stop_loss=None, rtol=1e-10, atol=1e-14)
    w0 = [traj.maps[0][0, 0, 0, 0], traj.maps[1][0, 0, 0, 0]]
    sol = solve_ivp(lambda t, w: np.array(th.landscape.reduced_flow(st, L, Lf, w[0], w[1])), (0, 40), w0,
                    t_eval=traj.time, rtol=1e-10, atol=1e-12)
    for m in range(2):
        assert np.max(np.abs(traj.maps[m][0, :, 0, 0] - sol.y[m])) < 1e-6


def _balanced_aligned_params(spec, u, signs, seed=0):
    """Weights of a balanced, rank-one network with branch norms u = (u_A, u_B): every matrix
    of branch m is u_m·r rᵀ_prev along a chain of unit vectors (its first one times signs[m]),
    every post-fusion matrix has norm √(u_A² + u_B²). The chain is shared after fusion, so
    W^l W^lᵀ = W^{l+1ᵀ} W^{l+1} and Σ_m W_m^{L_f} W_m^{L_fᵀ} = W^{L_f+1ᵀ} W^{L_f+1} hold."""
    rng = np.random.default_rng(seed)

    def unit(n):
        v = rng.standard_normal(n)
        return v / np.linalg.norm(v)

    fused = unit(spec.post_dims[0]) if spec.post_depth else np.ones(1)
    branches = []
    for m, chain in enumerate(spec.branch_dims):
        prev, layers = np.array([float(signs[m])]), []
        for l in range(1, len(chain)):
            r = fused if l == len(chain) - 1 else unit(chain[l])
            layers.append(u[m] * np.outer(r, prev))
            prev = r
        branches.append(tuple(layers))
    u_post, prev, post = np.hypot(*u), fused, []
    for j in range(1, len(spec.post_dims)):
        r = np.ones(1) if j == len(spec.post_dims) - 1 else unit(spec.post_dims[j])
        post.append(u_post * np.outer(r, prev))
        prev = r
    return dln.Params(tuple(branches), tuple(post))


@pytest.mark.parametrize("L, Lf", [(2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2),
                                   (4, 3), (4, 4), (5, 3)])
def test_reduced_flow_is_the_gradient_flow_of_a_balanced_network(L, Lf):
    """At points away from the fixed points, reduced_flow equals dW_tot/dt of a balanced,
    aligned network that realizes those total weights: the Jacobian of the total maps applied
    to −∇ of the population loss ½⟨(y − ŷ)²⟩ (τ = 1), both by jax autodiff."""
    st = dln.Stats.scalar_toy(1.5, 1.0, -0.35, w_a=0.8, w_b=-1.3)
    spec = dln.NetworkSpec.fusion(L, Lf, width=4)

    def loss(p):
        W = jnp.concatenate(dln.total_maps(spec, p), axis=1)
        return 0.5 * jnp.trace(st.sigma_yy - 2 * W @ st.sigma_yx.T + W @ st.sigma @ W.T)

    for u, signs in (((0.6, 0.9), (1, 1)), ((1.1, 0.4), (1, -1)), ((0.3, 1.2), (-1, 1)),
                     ((0.8, 0.7), (-1, -1))):
        p = jax.tree_util.tree_map(jnp.asarray, _balanced_aligned_params(spec, u, signs))
        neg_grad = jax.tree_util.tree_map(lambda g: -g, jax.grad(loss)(p))
        maps, rates = jax.jvp(lambda q: dln.total_maps(spec, q), (p,), (neg_grad,))
        w = np.array([float(m[0, 0]) for m in maps])
        expected = np.array([float(r[0, 0]) for r in rates])
        got = np.array(th.landscape.reduced_flow(st, L, Lf, w[0], w[1]), dtype=float)
        assert np.linalg.norm(expected) > 1e-2  # not a fixed point
        # float64: both are a few dozen operations on O(1) numbers (measured ≤ 1e-15).
        assert np.linalg.norm(got - expected) <= 1e-13 * np.linalg.norm(expected), (u, signs)


def test_reduced_flow_vanishes_at_fixed_points():
    st = dln.Stats.scalar_toy(2.0, 1.0, -0.3)
    for Lf in (1, 2):
        for name, m in th.fixed_points(st, Lf).items():
            w = m.total_map[0]
            da, db = th.landscape.reduced_flow(st, 2, Lf, w[0], w[1])
            assert abs(da) < 1e-12 and abs(db) < 1e-12, name
    with pytest.raises(ValueError, match="scalar"):
        th.landscape.reduced_flow(dln.Stats.random(dim=4, seed=0), 2, 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="fusion_layer"):
        th.landscape.reduced_flow(st, 2, 3, 0.0, 0.0)


def _markers(ax):
    """Marker-only Line2D objects of an axes, keyed by the subscript of their label."""
    out = {}
    for line in ax.lines:
        if line.get_linestyle() == "None":
            name = line.get_label().removeprefix(r"$\mathcal{M}_{").removesuffix("}$")
            out[name] = (line, np.column_stack([line.get_xdata(), line.get_ydata()]))
    return out


def test_phase_portrait_marks_fixed_points_and_draws_the_data(tmp_path):
    """The markers sit at M_0, M_* = W* and the saddles M_A = (U_A, 0), M_B = (0, U_B), and the
    trajectory drawn is the data passed. For the toy y = w_A x_A + w_B x_B (no noise)
    W* = (w_A, w_B) and U_A = Σ_yxA/σ_A² = w_A + w_B ρσ_B/σ_A, U_B = w_B + w_A ρσ_A/σ_B."""
    sa, sb, rho, wa, wb = 2.0, 1.0, 0.4, 1.0, 0.5
    st = dln.Stats.scalar_toy(sa, sb, rho, w_a=wa, w_b=wb)
    ua, ub = wa + wb * rho * sb / sa, wb + wa * rho * sa / sb
    # The coordinates the library's Stats gives (compared with the closed forms first).
    assert st.unimodal_solution(0).item() == pytest.approx(ua, rel=1e-14)
    assert st.unimodal_solution(1).item() == pytest.approx(ub, rel=1e-14)
    assert st.global_solution()[0] == pytest.approx([wa, wb], rel=1e-14)
    expected = {"0": (0.0, 0.0), "*": tuple(st.global_solution()[0]),
                "A": (st.unimodal_solution(0).item(), 0.0),
                "B": (0.0, st.unimodal_solution(1).item())}
    path_a = np.linspace(0.0, 1.1, 40)
    path_b = 0.4 * np.sin(np.linspace(0.0, 3.0, 40))
    with plot.paper_style():
        fig = plot.phase_portrait(st, 3, 2, trajectories=[(path_a, path_b)])
        ax = fig.axes[0]
        marks = _markers(ax)
        assert set(marks) == set(expected)
        for name, xy in expected.items():
            line, data = marks[name]
            assert data.shape == (1, 2)
            assert np.allclose(data[0], xy, rtol=0, atol=1e-15), name
        assert marks["0"][0].get_markerfacecolor() == "white"   # unstable: open circle
        assert marks["*"][0].get_markerfacecolor() == "black"   # stable: filled circle
        assert marks["A"][0].get_marker() == "X" and marks["B"][0].get_marker() == "X"
        drawn = [line for line in ax.lines if line.get_linestyle() != "None"]
        assert len(drawn) == 1
        assert np.array_equal(drawn[0].get_xdata(), path_a)
        assert np.array_equal(drawn[0].get_ydata(), path_b)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert sorted(legend) == sorted(marks[n][0].get_label() for n in expected)
        # Early fusion has no unimodal saddles: only M_0 and M_*.
        early = plot.phase_portrait(st, 3, 1, legend=False)
        assert early.axes[0].get_legend() is None
        marks = _markers(early.axes[0])
        assert set(marks) == {"0", "*"}
        assert np.allclose(marks["*"][1][0], expected["*"], rtol=0, atol=1e-15)
        plt.close(early)
        paths = plot.save(fig, tmp_path / "pp")
    assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["pdf", "png"]
    assert all((tmp_path / f"pp.{ext}").stat().st_size > 0 for ext in ("pdf", "png"))


def test_phase_portrait_draws_a_trajectory():
    """A Trajectory is drawn run by run: each line is that run's recorded (W_A^tot, W_B^tot),
    one color and one legend entry for all of them, on the flow of the Trajectory's own
    network (depth and fusion layer taken from it; a conflicting one is refused)."""
    st = dln.Stats.scalar_toy(1.5, 1.0, 0.4)
    spec = dln.NetworkSpec.fusion(3, 2, width=6)
    traj = dln.simulate(spec, [st], seeds=[0, 1, 2], scale=0.05, steps=400, record_every=20)
    assert traj.batch_shape == (1, 3)
    expected_a = np.asarray(traj.maps[0])[0, :, :, 0, 0]         # (runs, T)
    expected_b = np.asarray(traj.maps[1])[0, :, :, 0, 0]
    for given in (traj, [traj]):
        fig = plot.phase_portrait(st, trajectories=given)
        ax = fig.axes[0]
        drawn = [line for line in ax.lines if line.get_linestyle() != "None"]
        assert len(drawn) == 3
        for r, line in enumerate(drawn):
            np.testing.assert_array_equal(line.get_xdata(), expected_a[r])
            np.testing.assert_array_equal(line.get_ydata(), expected_b[r])
        assert len({line.get_color() for line in drawn}) == 1
        assert [t.get_text() for t in ax.get_legend().get_texts()].count("simulation") == 1
        plt.close(fig)
    # The flow drawn is the (3, 2) network's: the same streamlines as asked for explicitly.
    segments = []
    for kw in ({"trajectories": traj}, {"depth": 3, "fusion_layer": 2}):
        fig = plot.phase_portrait(st, legend=False, **kw)
        segments.append(np.concatenate([c.get_segments() for c in fig.axes[0].collections
                                        if hasattr(c, "get_segments") and c.get_segments()
                                        and type(c).__name__ == "LineCollection"]))
        plt.close(fig)
    np.testing.assert_array_equal(segments[0], segments[1])
    with pytest.raises(ValueError, match="depth=2 but the Trajectory's network has depth 3"):
        plot.phase_portrait(st, 2, 2, trajectories=traj)
    # As simulate(..., observe={"maps": None}) returns it.
    unrecorded = replace(traj, records={k: v for k, v in traj.records.items() if k != "maps"})
    with pytest.raises(ValueError, match=r"trajectories\[0\]: the Trajectory has no recorded "
                                         "total maps"):
        plot.phase_portrait(st, trajectories=unrecorded)
