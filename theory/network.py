"""Why random initial weights delay learning, and the signal-subspace reduction.

1. Gradient updates are outer products of backward and forward signals: for a chain
   P = w M_{L−1} ⋯ M_2 v with scalar input and output, ∂P/∂M_l = b_l f_lᵀ with
   f_l = M_{l−1}⋯M_2 v and b_l = (w M_{L−1}⋯M_{l+1})ᵀ. So every update of every layer lies in
   span{backward signals} ⊗ span{forward signals}: the weights move only inside the subspaces
   those signals span (at most Σ_m d_m + d_out dimensions per hidden space). dlnfusion's
   reduction keeps exactly these subspaces of the initial weights.
2. For a chain with two hidden matrices (L = 4), the first phase (errors ≈ Σ_yx = s) is a
   *linear* system in x = M_2 v and y = M_3ᵀ w while ‖v‖, ‖w‖ barely move:
       ẋ = s‖v‖² y,   ẏ = s‖w‖² x,   P = wᵀ M_3 M_2 v = x·y,
   so the growing mode (x/‖v‖ + y/‖w‖)/2 grows like e^{s‖v‖‖w‖t} from a random seed of size
   ~u0/√width — the analogue of the two-layer α mode.
3. Once this mode has grown, the chain is an aligned chain with unbalanced layers
   (a_1 = a_4 = a, a_2 = a_3 = m, a² − m² = u0²), whose escape obeys ṁ = s m(u0² + m²): the time
   from a seed m0 is t* = ln(√(u0² + m0²)/m0)/(s u0²), i.e. ln(√width)/(s u0²) for random weights
   instead of 1/(2 s u0²) for balanced aligned ones — five times longer at u0 = 0.1, width 100.

Item 1 is what dlnfusion.reduced.reduce_network relies on; check_outer_product_updates compares
it with the library. Items 2 and 3 explain the delay measured in the simulations and have no
library counterpart (the reduction integrates the reduced network numerically instead).
"""
import numpy as np
import sympy as sp

from _checks import close_max as _close, random_params as _random_params


def _chain(h, d=1):
    """P = w M_3 M_2 v for a chain with input dimension d (v is h×d) and scalar output, and
    the gradient of P with respect to every layer (by differentiation)."""
    v = sp.Matrix(h, d, lambda i, j: sp.Symbol(f"v{i}{j}", real=True))
    w = sp.Matrix([sp.symbols(f"w0:{h}", real=True)])
    M2 = sp.Matrix(h, h, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    M3 = sp.Matrix(h, h, lambda i, j: sp.Symbol(f"n{i}{j}", real=True))
    P = w * M3 * M2 * v                                  # 1×d
    layers = (v, M2, M3, w)
    grads = [[sp.Matrix(*M.shape, lambda i, j: sp.diff(P[0, c], M[i, j])) for M in layers]
             for c in range(d)]
    return layers, P, grads


def derive_outer_product_updates():
    (v, M2, M3, w), P, grads = _chain(2)
    grad2, grad3 = grads[0][1], grads[0][2]
    assert sp.simplify(grad2 - (w * M3).T * v.T) == sp.zeros(2, 2)       # b_2 f_2ᵀ
    assert sp.simplify(grad3 - w.T * (M2 * v).T) == sp.zeros(2, 2)       # b_3 f_3ᵀ
    return True


def check_outer_product_updates():
    """reduce_network (basis "signals") keeps the signals: for chains with two hidden matrices
    (NetworkSpec.fusion(4, 4), two scalar modalities, width 5 → 3) the reduced network has the
    same total maps, and its gradient-descent step of every layer has the Frobenius norm of the
    derived gradient g_m ∂P/∂W_l of the original weights (an outer product of signals inside
    the kept subspaces, so the orthonormal projection preserves its norm). For two-layer
    networks the kept subspaces are invariant, so 50 steps of both networks give the same
    total maps."""
    import dlnfusion as dln
    from dlnfusion import Stats
    from dlnfusion import reduced as rd

    # Float64 rounding of products of O(1) matrices (~1e-16); the QR bases add a few more.
    rtol = 1e-12
    st = Stats.scalar_toy(1.3, 0.8, 0.4, w_a=1.0, w_b=-0.5)
    h = 5
    layers, P, grads = _chain(h)
    syms = [x for M in layers for x in M]
    grad_fns = [sp.lambdify(syms, g) for g in grads[0]]
    spec = dln.NetworkSpec.fusion(4, 4, width=h)
    params = _random_params(spec, 2, 0.4)
    rspec, rparams = rd.reduce_network(spec, params)
    maps = [np.asarray(m)[0] for m in dln.total_maps(spec, params)]
    rmaps = [np.asarray(m)[0] for m in dln.total_maps(rspec, rparams)]
    for a, b in zip(maps, rmaps):
        _close(b, a, rtol, "total maps of the reduced network")
    W = np.concatenate(maps, axis=1)
    g = (W @ st.sigma - st.sigma_yx)[0]                  # ∂L/∂W_m^tot
    step = dln.train(rspec, st, rparams, lr=1.0, steps=1, record_every=1, stop_loss=None)
    for m, (orig, red0, red1) in enumerate(zip(params.branches, rparams.branches,
                                               step.final_params.branches)):
        vals = [x for M in orig for x in np.asarray(M)[0].ravel()]
        for l, (a, b) in enumerate(zip(red0, red1)):
            want = abs(g[m]) * np.linalg.norm(np.asarray(grad_fns[l](*vals), dtype=float))
            got = np.linalg.norm(np.asarray(b)[0] - np.asarray(a)[0])
            _close(got, want, rtol, f"gradient norm of layer {l + 1}, branch {m}")
    # Two layers, vector and scalar modalities: the reduced dynamics are the original's.
    st2 = Stats.random(dim=3, seed=2, dims=(2, 1))
    spec2 = dln.NetworkSpec.fusion(2, 2, width=6, input_dims=(2, 1))
    p2 = _random_params(spec2, 4, 0.3)
    rs2, rp2 = rd.reduce_network(spec2, p2)
    full = dln.train(spec2, st2, p2, lr=0.1, steps=50, record_every=50, stop_loss=None)
    red = dln.train(rs2, st2, rp2, lr=0.1, steps=50, record_every=50, stop_loss=None)
    for a, b in zip(full.final_maps, red.final_maps):
        # 50 steps of rounding on O(1) maps.
        _close(b, a, rtol, "total maps after 50 steps")
    return True


def derive_linear_first_phase():
    """With v, w frozen: ẋ = M_2' v = s‖v‖² y and ẏ = M_3'ᵀ w = s‖w‖² x; P = x·y.

    An explanation of the simulations, with no dlnfusion counterpart (the reduction integrates
    the reduced network numerically)."""
    s = sp.Symbol("s", positive=True)
    v = sp.Matrix(sp.symbols("v0:2", real=True))
    w = sp.Matrix([sp.symbols("w0:2", real=True)])
    M2 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    M3 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"n{i}{j}", real=True))
    dM2 = s * (w * M3).T * v.T
    dM3 = s * w.T * (M2 * v).T
    x, y = M2 * v, (w * M3).T
    assert sp.simplify(dM2 * v - s * (v.T * v)[0, 0] * y) == sp.zeros(2, 1)
    assert sp.simplify(dM3.T * w.T - s * (w * w.T)[0, 0] * x) == sp.zeros(2, 1)
    assert sp.simplify((w * M3 * M2 * v)[0, 0] - (x.T * y)[0, 0]) == 0
    # Growing mode: with ξ = x/‖v‖, ζ = y/‖w‖: ξ̇ = s‖v‖‖w‖ ζ, ζ̇ = s‖v‖‖w‖ ξ.
    a, c, t = sp.symbols("a c t", positive=True)
    sol = sp.exp(s * a * c * t)
    assert sp.simplify(sp.diff(sol, t) - s * a * c * sol) == 0
    return True


def derive_unbalanced_escape():
    """ṁ = s m(u0² + m²) from m0: t(m) = [ln(m/m0) − ½ ln((u0² + m²)/(u0² + m0²))]/(s u0²),
    escaping (m → ∞) at t* = ln(√(u0² + m0²)/m0)/(s u0²); balanced aligned (m0 = u0 = a):
    ṁ = s m³ escapes at 1/(2 s u0²). An explanation of the simulations (docs), with no
    dlnfusion counterpart."""
    m, m0, u0, s = sp.symbols("m m_0 u_0 s", positive=True)
    t = (sp.log(m / m0) - sp.log((u0 ** 2 + m ** 2) / (u0 ** 2 + m0 ** 2)) / 2) / (s * u0 ** 2)
    assert sp.simplify(1 / sp.diff(t, m) - s * m * (u0 ** 2 + m ** 2)) == 0
    assert sp.simplify(t.subs(m, m0)) == 0
    t_star = sp.limit(t, m, sp.oo)
    assert sp.simplify(t_star - sp.log(sp.sqrt(u0 ** 2 + m0 ** 2) / m0) / (s * u0 ** 2)) == 0
    tb = (u0 ** -2 - m ** -2) / (2 * s)                 # balanced: ṁ = s m³ from u0
    assert sp.simplify(1 / sp.diff(tb, m) - s * m ** 3) == 0
    assert sp.limit(tb, m, sp.oo) == 1 / (2 * s * u0 ** 2)
    # Conservation behind a² − m² = u0²: d/dt(a² − m²) = 0 for ȧ = s a m², ṁ = s a² m.
    a = sp.Symbol("a", positive=True)
    assert sp.simplify(2 * a * (s * a * m ** 2) - 2 * m * (s * a ** 2 * m)) == 0
    return True


def derive_all():
    return all([derive_outer_product_updates(), derive_linear_first_phase(),
                derive_unbalanced_escape()])


def check_all():
    return check_outer_product_updates()


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("network:", derive_all(), "checked against dlnfusion:", check_all())
