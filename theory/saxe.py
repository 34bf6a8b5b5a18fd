"""Exact mode decomposition of a two-layer pathway and its logistic dynamics (eq. 21).

A two-layer pathway with first layer W¹ (h×d) and second layer W² (1×h) under a constant
error correlation e (1×d) evolves, in gradient descent with step η,

    W¹' = W¹ + η W²ᵀ e,        W²' = W² + η e W¹ᵀ.

Write e = ε ê with ‖ê‖ = 1 and the sign ε = ±1 absorbed into the choice of ê. Then the
h-vectors α = (W¹êᵀ + W²ᵀ)/√2 and β = (W¹êᵀ − W²ᵀ)/√2 obey, exactly,

    α' = (1 + η‖e‖) α,          β' = (1 − η‖e‖) β,

and W¹'s components orthogonal to ê do not move. The total map along ê is
W²W¹êᵀ = ½(‖α‖² − ‖β‖²). This is what dlnfusion calls the growing mode
(dlnfusion.theory.effective_init) and what makes t_A, t_B exact log-linear functions of the
initial weights in the linear phase.

With a balanced, aligned pathway (β = 0) and white input Σ = σ²I, the error along ê is
‖Σ_yx‖ − σ² w with w = ½‖α‖², so w' = w (1 + η(s − σ² w))²: in progress units x = w/w*
(w* = s/σ²) the logistic map x' = x(1 + g(1 − x))², g = ηs. Its flow limit
τ dw/dt = 2w(s − σ² w) has the solution of eq. (21) / Kleinman et al. eq. (3).

Early fusion is one such pathway on the stacked input; its balanced rank-one networks are an
invariant set of gradient descent (derive_early_fusion_reduction), the model of
dlnfusion.theory.predict_times_early.

The check_* functions evaluate the derived expressions at sample points and compare them
with dlnfusion.theory: effective_init, logistic_map_crossing, logistic_weight, mode_strength,
saxe_late_fusion, typical_effective_init (E ln w₀ of random weights), effective_init_early
and predict_times_early.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

from _checks import close_each as _close

# The library evaluates the same closed forms in float64: a few roundings apart (~1e-15).
RTOL_FLOAT = 1e-12


def _gd_step_modes(h, d):
    """Symbols, one gradient-descent step and the modes α, β of a pathway (ê at angle θ)."""
    eta, en = sp.symbols("eta e_norm", positive=True)
    W1 = sp.Matrix(h, d, lambda i, j: sp.Symbol(f"u_{i}{j}", real=True))
    W2 = sp.Matrix(1, h, lambda i, j: sp.Symbol(f"v_{j}", real=True))
    # ê: a generic unit vector in R^d, parameterized by an angle (d = 2); ±1 for d = 1.
    th = sp.Symbol("theta", real=True)
    sgn = sp.Symbol("epsilon", real=True)
    ehat = sp.Matrix([[sp.cos(th), sp.sin(th)]]) if d == 2 else sp.Matrix([[sgn]])
    e = en * ehat
    W1n = W1 + eta * W2.T * e
    W2n = W2 + eta * e * W1.T
    alpha = (W1 * ehat.T + W2.T) / sp.sqrt(2)
    beta = (W1 * ehat.T - W2.T) / sp.sqrt(2)
    alpha_n = (W1n * ehat.T + W2n.T) / sp.sqrt(2)
    beta_n = (W1n * ehat.T - W2n.T) / sp.sqrt(2)
    return dict(eta=eta, en=en, W1=W1, W2=W2, th=th, sgn=sgn, ehat=ehat, W1n=W1n,
                alpha=alpha, beta=beta, alpha_n=alpha_n, beta_n=beta_n)


def derive_gd_modes(h: int = 2, d: int = 2):
    """α and β are exact eigen-directions of one gradient-descent step (symbolic h, d small)."""
    g = _gd_step_modes(h, d)
    eta, en, W1, W2, th, ehat = g["eta"], g["en"], g["W1"], g["W2"], g["th"], g["ehat"]
    alpha, beta = g["alpha"], g["beta"]
    for unit in ([{}] if d == 2 else [{g["sgn"]: 1}, {g["sgn"]: -1}]):     # d = 1: ê = ±1
        assert sp.simplify((g["alpha_n"] - (1 + eta * en) * alpha).subs(unit)) == sp.zeros(h, 1)
        assert sp.simplify((g["beta_n"] - (1 - eta * en) * beta).subs(unit)) == sp.zeros(h, 1)
        # Total map along ê.
        total = (W2 * W1 * ehat.T)[0, 0]
        diff = total - ((alpha.T * alpha)[0, 0] - (beta.T * beta)[0, 0]) / 2
        assert sp.simplify(diff.subs(unit)) == 0
    if d == 2:
        ortho = sp.Matrix([[-sp.sin(th), sp.cos(th)]])
        assert sp.simplify(g["W1n"] * ortho.T - W1 * ortho.T) == sp.zeros(h, 1)
    return True


def check_gd_modes():
    """effective_init against ½‖α‖² (the growing mode's value) for a vector branch (d = 2, ê at
    an angle) and a scalar branch (ê = ±1), with a batch axis."""
    import dlnfusion as dln
    from dlnfusion import theory as th

    h = 3
    ga, gb = _gd_step_modes(h, 2), _gd_step_modes(h, 1)
    # Arguments: the entries of W¹ and W² (row-major, as numpy's ravel), then θ or ε.
    fa = sp.lambdify(list(ga["W1"]) + list(ga["W2"]) + [ga["th"]],
                     (ga["alpha"].T * ga["alpha"])[0, 0] / 2)
    fb = sp.lambdify(list(gb["W1"]) + list(gb["W2"]) + [gb["sgn"]],
                     (gb["alpha"].T * gb["alpha"])[0, 0] / 2)
    spec = dln.NetworkSpec.fusion(2, 2, width=h, input_dims=(2, 1))
    rng = np.random.default_rng(0)
    a1, a2 = rng.normal(size=(2, h, 2)), rng.normal(size=(2, 1, h))
    b1, b2 = rng.normal(size=(2, h, 1)), rng.normal(size=(2, 1, h))
    params = dln.Params(((a1, a2), (b1, b2)), ())
    for theta in (0.3, 2.5, -1.2):
        for sgn in (1.0, -1.0):
            got = th.effective_init(spec, params, [[np.cos(theta), np.sin(theta)], [sgn]])
            want = [[fa(*a1[i].ravel(), *a2[i].ravel(), theta),
                     fb(*b1[i].ravel(), *b2[i].ravel(), sgn)] for i in range(2)]
            _close(got, want, RTOL_FLOAT, "effective_init")
    return True


_MAP = sp.symbols("eta s sigma2 w", positive=True)


def _w_map():
    """One gradient-descent step of the balanced aligned pathway in total-weight units."""
    eta, s, sig2, w = _MAP
    a = sp.sqrt(2 * w)  # ‖α‖ for w = ½‖α‖²
    e = s - sig2 * w
    return ((1 + eta * e) * a) ** 2 / 2


def derive_logistic_map():
    """With β = 0: w' = w(1 + η(s − σ²w))², i.e. x' = x(1 + g(1 − x))² with x = w/w*, g = ηs."""
    eta, s, sig2, w = _MAP
    w_next = _w_map()
    assert sp.simplify(w_next - w * (1 + eta * (s - sig2 * w)) ** 2) == 0
    x, g = sp.symbols("x g", positive=True)
    wstar = s / sig2
    lhs = (w * (1 + eta * (s - sig2 * w)) ** 2).subs(w, x * wstar) / wstar
    assert sp.simplify(lhs - (x * (1 + g * (1 - x)) ** 2).subs(g, eta * s)) == 0
    return True


def check_logistic_map():
    """logistic_map_crossing(x₀, ηs) against iterating the derived map in total-weight units
    from w₀ = x₀ w* until w passes w*/2 (linear interpolation within the last step)."""
    from dlnfusion import theory as th

    step = sp.lambdify(_MAP, _w_map())
    for eta, s, sig2, w0 in ((0.04, 2.6, 4.0, 1e-9), (0.3, 1.0, 0.5, 1e-3), (0.01, 0.7, 1.3, 1e-6),
                             (0.9, 1.05, 1.0, 0.1)):
        w_star = s / sig2
        w, n = w0, 0
        while True:
            wn = step(eta, s, sig2, w)
            if wn >= w_star / 2:
                want = n + (w_star / 2 - w) / (wn - w)
                break
            w, n = wn, n + 1
        # The crossing step is a sum of n ~ 1e3 steps; the interpolated fraction carries the
        # rounding of the map (1e-16 per step, amplified by at most the number of steps).
        _close(th.timescales.logistic_map_crossing(w0 / w_star, eta * s), want, RTOL_FLOAT,
               f"logistic_map_crossing (eta s = {eta * s:g})")
    return True


_LOGI = sp.symbols("t tau s sigma2 w0", positive=True)


def _logistic_solutions():
    t, tau, s, sig2, w0 = _LOGI
    wstar = s / sig2
    w = wstar / (1 + (wstar / w0 - 1) * sp.exp(-2 * s * t / tau))
    kleinman = s * sp.exp(2 * s * t / tau) / (sp.exp(2 * s * t / tau) - 1 + s / w0)
    return w, kleinman


def derive_logistic_solution():
    """τ dw/dt = 2w(s − σ²w) is solved by w*/(1 + (w*/w₀ − 1)e^{−2st/τ}) (eq. 21), which is
    Kleinman et al.'s s e^{2st/τ}/(e^{2st/τ} − 1 + s/a₀) at σ² = 1 (eq. 3)."""
    t, tau, s, sig2, w0 = _LOGI
    wstar = s / sig2
    w, kleinman = _logistic_solutions()
    assert sp.simplify(tau * sp.diff(w, t) - 2 * w * (s - sig2 * w)) == 0
    assert sp.simplify(w.subs(t, 0) - w0) == 0
    assert sp.simplify(w.subs(sig2, 1) - kleinman) == 0
    # Eq. (21) as printed: u(t) = [(s/(σ² u(0)) − 1) e^{−2st/τ} + 1]^{-1}. Evaluated at t = 0 it
    # returns σ² u(0)/s, not u(0): the u(0) inside is the initial total weight w₀, while u(t)
    # on the left is the fraction w(t)/w*.
    u0 = sp.Symbol("u0", positive=True)
    printed = 1 / ((s / (sig2 * u0) - 1) * sp.exp(-2 * s * t / tau) + 1)
    assert sp.simplify(printed.subs(t, 0) - sig2 * u0 / s) == 0
    assert sp.simplify(printed - (w / wstar).subs(w0, u0)) == 0
    return True


def check_logistic_solution():
    """logistic_weight and mode_strength against eq. (21) and Kleinman et al.'s form, evaluated
    by mpmath (30 digits), over the whole sigmoid, from w₀ = 1e-17 and at times where
    e^{2st/τ} overflows float64."""
    import mpmath as mp

    from dlnfusion import theory as th

    w, kleinman = _logistic_solutions()
    fw = sp.lambdify(_LOGI, w, "mpmath")
    fk = sp.lambdify(_LOGI[:3] + (_LOGI[4],), kleinman, "mpmath")
    for s, sig2, w0, tau in ((3.0, 2.0, 1e-4, 25.0), (1.7, 1.0, 1e-17, 10.0), (0.4, 0.3, 0.5, 1.0)):
        ts = np.array([0.0, 1.0, 30.0, 200.0, 5e3, 1e5]) * tau / s
        with mp.workdps(30):
            want = [float(fw(mp.mpf(t), tau, s, sig2, w0)) for t in ts]
            want_k = [float(fk(mp.mpf(t), tau, s, w0)) for t in ts]
        _close(th.saxe.logistic_weight(ts, s, sig2, w0, lr=1 / tau), want, RTOL_FLOAT, "logistic_weight")
        _close(th.saxe.mode_strength(ts, s, w0, lr=1 / tau), want_k, RTOL_FLOAT, "mode_strength")
    return True


def derive_balanced_two_layer_reduction():
    """For balanced rank-one weights W¹ = c r vᵀ, W² = c rᵀ (‖r‖ = ‖v‖ = 1), gradient flow
    keeps them rank-one and the total map w = c² along v obeys τ dw/dt = 2w e·v: the row
    dynamics above with β = 0. Checked here for the ODE of c (h = 2, d = 2)."""
    c, ev = sp.symbols("c e_v", real=True)
    r = sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])
    v = sp.Matrix([[sp.Rational(5, 13), sp.Rational(12, 13)]])
    e = ev * v  # error along v
    W1, W2 = c * r * v, c * r.T
    dW1 = W2.T * e
    dW2 = e * W1.T
    # Both derivatives equal (dc/dt) times the direction of the layer, with dc/dt = c e_v.
    assert sp.simplify(dW1 - (c * ev) * r * v) == sp.zeros(2, 2)
    assert sp.simplify(dW2 - (c * ev) * r.T) == sp.zeros(1, 2)
    w = c ** 2
    assert sp.simplify(sp.diff(w, c) * c * ev - 2 * w * ev) == 0
    return True


def check_balanced_two_layer_reduction():
    """saxe_late_fusion: for uncorrelated white modalities each branch is such a pathway with
    e·v = ‖Σ_yx_m‖ − σ_m² w, so its total map is eq. (21) (mpmath) along Σ_yx_m/‖Σ_yx_m‖."""
    import mpmath as mp

    from dlnfusion import Stats, theory as th

    w, _ = _logistic_solutions()
    fw = sp.lambdify(_LOGI, w, "mpmath")
    st = Stats.from_teacher(np.diag([4.0, 4.0, 1.0]), [1.0, -2.0, 1.0], dims=(2, 1))
    assert th.saxe.white_uncorrelated(st).valid
    tau, w0 = 25.0, (1e-6, 3e-4)
    ts = np.array([0.0, 10.0, 60.0, 300.0, 3000.0])
    got = th.saxe_late_fusion(st, ts, w0, lr=1 / tau)
    for m, sigma2 in ((0, 4.0), (1, 1.0)):
        s_vec = st.sigma_yx_m(m)[0]
        s = float(np.linalg.norm(s_vec))
        with mp.workdps(30):
            wt = np.array([float(fw(mp.mpf(t), tau, s, sigma2, w0[m])) for t in ts])
        _close(got[m][:, 0, :], wt[:, None] * (s_vec / s)[None, :], RTOL_FLOAT,
               f"saxe_late_fusion, modality {m}")
    return True


def _early_rank_one():
    """Symbols of a balanced rank-one early-fusion network (h = 2 units, D = 2 inputs):
    W¹ = q a, W² = v qᵀ with the unit vector q = (3/5, 4/5), and one gradient-descent step
    under the squared loss in moments, e = Σ_yx − W Σ (theory/losses.py)."""
    eta, v = sp.symbols("eta v", real=True)
    a = sp.Matrix([[sp.Symbol("a_0", real=True), sp.Symbol("a_1", real=True)]])
    q = sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])
    S = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"S_{min(i, j)}{max(i, j)}", real=True))
    s = sp.Matrix([[sp.Symbol("s_0", real=True), sp.Symbol("s_1", real=True)]])
    W1, W2 = q * a, v * q.T
    W = W2 * W1
    e = s - W * S
    return dict(eta=eta, v=v, a=a, q=q, S=S, s=s, W1=W1, W2=W2, W=W, e=e,
                W1n=W1 + eta * W2.T * e, W2n=W2 + eta * e * W1.T)


def derive_early_fusion_reduction():
    """Two-layer early fusion: the balanced rank-one networks W¹ = q a, W² = v qᵀ (‖q‖ = 1)
    are invariant under gradient descent, which acts on them as a' = a + η v e,
    v' = v + η e aᵀ with e = Σ_yx − v a Σ; their total map is v a. Started on the growing
    mode, a = c ê, v = c, the seed ¼‖W¹ê + W²ᵀ‖² of effective_init_early is c², the total map
    along ê."""
    g = _early_rank_one()
    eta, v, a, q, e = g["eta"], g["v"], g["a"], g["q"], g["e"]
    assert sp.simplify(g["W"] - v * a) == sp.zeros(1, 2)
    a_n, v_n = a + eta * v * e, v + eta * (e * a.T)[0, 0]
    assert sp.simplify(g["W1n"] - q * a_n) == sp.zeros(2, 2)
    assert sp.simplify(g["W2n"] - v_n * q.T) == sp.zeros(1, 2)
    c, th = sp.symbols("c theta", real=True)
    ehat = sp.Matrix([[sp.cos(th), sp.sin(th)]])
    on_mode = {a[0]: c * ehat[0], a[1]: c * ehat[1], v: c}
    growing = (g["W1"] * ehat.T + g["W2"].T).subs(on_mode)
    assert sp.simplify((growing.T * growing)[0, 0] / 4 - c ** 2) == 0
    assert sp.simplify((g["W"] * ehat.T)[0, 0].subs(on_mode) - c ** 2) == 0
    return True


def check_early_fusion_reduction():
    """effective_init_early against ¼‖W¹ê + W²ᵀ‖² (lambdified, ê = Σ_yx/‖Σ_yx‖) on random
    weights with a batch axis; predict_times_early against gradient descent (dlnfusion.train)
    of a width-3 balanced rank-one network started on the growing mode, for scalar and vector
    modalities. Both iterate the same map in float64 in a different order of operations: the
    half-way times agree to float64 rounding (measured ≤ 4e-16; tolerance 1e-12)."""
    import dlnfusion as dln
    from dlnfusion import theory as th

    h = 3
    W1s = sp.Matrix(h, 3, lambda i, j: sp.Symbol(f"u_{i}{j}", real=True))
    W2s = sp.Matrix(1, h, lambda i, j: sp.Symbol(f"v_{j}", real=True))
    es = sp.Matrix([[sp.Symbol(f"e_{j}", real=True) for j in range(3)]])
    grow = W1s * es.T + W2s.T
    seed = sp.lambdify(list(W1s) + list(W2s) + list(es), (grow.T * grow)[0, 0] / 4)
    cases = [dln.Stats.scalar_toy(2.0, 1.0, 0.0), dln.Stats.scalar_toy(1.0, 1.5, -0.6),
             dln.Stats.from_teacher([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]],
                                    [1.0, -0.5, 2.0], dims=(2, 1))]
    rng = np.random.default_rng(3)
    for st in cases:
        dims = st.dims
        spec = dln.NetworkSpec.fusion(2, 1, width=h, input_dims=dims)
        D = sum(dims)
        s_vec = np.asarray(st.sigma_yx, dtype=float).reshape(-1)
        e = s_vec / np.linalg.norm(s_vec)
        # Random weights (batch of 2), D = 3 inputs padded to the symbols' three columns.
        W1, W2 = rng.normal(size=(2, h, D)), rng.normal(size=(2, 1, h))
        cols = np.cumsum((0,) + dims)
        params = dln.Params(tuple((W1[:, :, cols[m]:cols[m + 1]],) for m in range(2)), (W2,))
        pad = lambda x: np.pad(x, ((0, 0), (0, 3 - D)))  # noqa: E731
        want = [seed(*pad(W1[i]).ravel(), *W2[i].ravel(), *np.pad(e, (0, 3 - D))) for i in range(2)]
        _close(th.effective_init_early(spec, params, st), want, RTOL_FLOAT,
               "effective_init_early")
        # The balanced rank-one network on the growing mode: a = √w₀ ê, v = √w₀.
        w0, lr = 1e-16, 0.04
        q = np.array([0.48, 0.6, 0.64])
        a0 = np.sqrt(w0) * e
        W1r, W2r = np.outer(q, a0)[None], (np.sqrt(w0) * q)[None, None, :]
        p0 = dln.Params(tuple((W1r[:, :, cols[m]:cols[m + 1]],) for m in range(2)), (W2r,))
        _close(th.effective_init_early(spec, p0, st), [w0], RTOL_FLOAT, "seed on the mode")
        traj = dln.train(spec, st, p0, lr=lr, steps=5000, stop_loss=1e-6)
        pred = th.predict_times_early(st, lr, w0)
        sim = {st.names[m]: float(traj.crossing(m, "global", 0.5)[0]) for m in range(2)}
        _close([pred.t_A, pred.t_B], [sim[pred.first], sim[pred.second]], RTOL_FLOAT,
               "predict_times_early vs gradient descent")
    return True


@lru_cache(maxsize=None)
def _typical_log_w0():
    """E ln w₀ for w₀ = ¼‖W¹v + W²ᵀ‖² with i.i.d. N(0, std²) weights: W¹v + W²ᵀ has h i.i.d.
    N(0, 2 std²) entries, so w₀ = (std²/2) X with X ~ χ²_h, and E ln X is an integral."""
    x, std = sp.symbols("x std", positive=True)
    h = sp.Symbol("h", positive=True)
    a = h / 2
    density = x ** (a - 1) * sp.exp(-x / 2) / (2 ** a * sp.gamma(a))
    e_log_x = sp.simplify(sp.integrate(sp.log(x) * density, (x, 0, sp.oo)))
    return (std, h), sp.log(std ** 2 / 2) + e_log_x, e_log_x


def derive_typical_effective_init():
    """E ln χ²_h = ln 2 + ψ(h/2), hence exp E ln w₀ = std² e^{ψ(h/2)}."""
    (std, h), e_log_w0, e_log_x = _typical_log_w0()
    assert sp.simplify(e_log_x - (sp.log(2) + sp.polygamma(0, h / 2))) == 0
    assert sp.simplify(sp.exp(e_log_w0) - std ** 2 * sp.exp(sp.polygamma(0, h / 2))) == 0
    return True


def check_typical_effective_init():
    """typical_effective_init(std, h) against exp E ln w₀ of _typical_log_w0 (mpmath)."""
    from dlnfusion import theory as th

    args, e_log_w0, _ = _typical_log_w0()
    f = sp.lambdify(args, sp.exp(e_log_w0), "mpmath")
    for std in (1e-9, 0.1):
        for h in (1, 2, 7, 100):
            _close(th.saxe.typical_effective_init(std, h), float(f(std, h)), RTOL_FLOAT,
                   f"typical_effective_init(h = {h})")
    return True


def derive_all():
    return all([derive_gd_modes(), derive_gd_modes(h=3, d=1), derive_logistic_map(),
                derive_logistic_solution(), derive_balanced_two_layer_reduction(),
                derive_typical_effective_init(), derive_early_fusion_reduction()])


def check_all():
    return all([check_gd_modes(), check_logistic_map(), check_logistic_solution(),
                check_balanced_two_layer_reduction(), check_typical_effective_init(),
                check_early_fusion_reduction()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("saxe:", derive_all(), "checked against dlnfusion:", check_all())
