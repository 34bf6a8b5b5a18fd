"""Gradient-descent equations of fusion networks, derived from the loss (paper eqs. 3-5, 14-18).

Starting point: the loss ½⟨(y − ŷ)²⟩ of a network ŷ = Σ_m W_m^tot x_m. Averaging over the data
with linearity of ⟨·⟩ leaves only the moments Σ, Σ_yx and ⟨y²⟩:

    L = ½⟨y²⟩ − Σ_m W_m^tot ⟨x_m y⟩ + ½ Σ_mn W_m^tot ⟨x_m x_nᵀ⟩ W_n^totᵀ.

We differentiate this with sympy for small symbolic networks and check that −∂L/∂W equals the
right-hand sides of eqs. (3)–(5) (paper, with e_A, e_B of eq. 5), including the two-layer
late-fusion case (eq. 18). We also check the form of the loss used by the simulator,
L = L* + ½(W − W*)Σ(W − W*)ᵀ with W* = Σ_yxΣ^{-1} and L* = ½(⟨y²⟩ − Σ_yxΣ^{-1}Σ_xy).

Run as a script or through the test suite; every function raises AssertionError on failure.
Each check_* function evaluates the derived expressions at sample points and compares them
with dlnfusion: the gradient and loss of the population objective through one step of
dlnfusion.train / dlnfusion.simulate, Stats.loss / min_loss / global_solution, and
dlnfusion.losses.gaussian_logistic.
"""
import numpy as np
import sympy as sp

from _checks import close_max as _close, toy_symbols as _moments, toy_loss as _loss

# One gradient-descent step with η = 1 gives W' − W = −∇L: the library's step and the
# derived gradient differ by the float64 rounding of W − ∇L (|W|, |∇L| of order one: ~1e-16)
# and of the few products in each; 1e-12 relative to the largest gradient entry.
RTOL_FLOAT = 1e-12


def _mat(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def _late_fusion_system(h):
    """ŷ = W_A² W_A¹ x_A + W_B² W_B¹ x_B: layers, loss and the right-hand sides of eq. (18)."""
    m = _moments()
    sa2, sb2, sab, ya, yb, yy = m
    A1, A2, B1, B2 = _mat("a", h, 1), _mat("c", 1, h), _mat("b", h, 1), _mat("d", 1, h)
    WA, WB = (A2 * A1)[0, 0], (B2 * B1)[0, 0]
    L = _loss(WA, WB, m)
    eA = ya - WA * sa2 - WB * sab        # eq. (5a), scalar case
    eB = yb - WA * sab - WB * sb2        # eq. (5b)
    rhs = {"A1": A2.T * eA, "A2": eA * A1.T, "B1": B2.T * eB, "B2": eB * B1.T}  # eq. (18)
    return {"A1": A1, "A2": A2, "B1": B1, "B2": B2}, L, rhs


def _intermediate_system(h):
    """L = 3, L_f = 2: layers, loss and the right-hand sides of eqs. (3a), (3b), (4)."""
    m = _moments()
    sa2, sb2, sab, ya, yb, yy = m
    A1, A2 = _mat("a", h, 1), _mat("p", h, h)
    B1, B2 = _mat("b", h, 1), _mat("q", h, h)
    W3 = _mat("w", 1, h)
    WA, WB = (W3 * A2 * A1)[0, 0], (W3 * B2 * B1)[0, 0]
    L = _loss(WA, WB, m)
    eA = ya - WA * sa2 - WB * sab
    eB = yb - WA * sab - WB * sb2
    rhs = {
        "A1": (W3 * A2).T * eA,                  # (3a), l = 1
        "A2": W3.T * eA * A1.T,                  # (3a), l = L_f = 2
        "B1": (W3 * B2).T * eB,                  # (3b)
        "B2": W3.T * eB * B1.T,
        "W3": eA * (A2 * A1).T + eB * (B2 * B1).T,  # (4), l = L = 3
    }
    return {"A1": A1, "A2": A2, "B1": B1, "B2": B2, "W3": W3}, L, rhs


def derive_two_layer_late_fusion(h: int = 2):
    """−∂L/∂W for ŷ = W_A² W_A¹ x_A + W_B² W_B¹ x_B equals eq. (18) (τ = 1, scalar inputs)."""
    mats, L, rhs = _late_fusion_system(h)
    for name, M in mats.items():
        grad = sp.Matrix(M.shape[0], M.shape[1], lambda i, j: -sp.diff(L, M[i, j]))
        assert sp.simplify(grad - rhs[name]) == sp.zeros(*M.shape), name
    return True


def derive_intermediate_fusion(h: int = 2):
    """L = 3, L_f = 2: −∂L/∂W equals eqs. (3a), (3b) and (4) for every layer."""
    mats, L, rhs = _intermediate_system(h)
    for name, M in mats.items():
        grad = sp.Matrix(M.shape[0], M.shape[1], lambda i, j: -sp.diff(L, M[i, j]))
        assert sp.expand(grad - rhs[name]) == sp.zeros(*M.shape), name
    return True


def _sample_stats():
    from dlnfusion import Stats

    return [Stats.scalar_toy(1.3, 0.8, 0.4, w_a=1.0, w_b=-0.5, noise_var=0.1),
            Stats.scalar_toy(2.0, 1.0, -0.7)]


def _moment_values(st):
    S, s = st.sigma, st.sigma_yx[0]
    return dict(zip(_moments(), (S[0, 0], S[1, 1], S[0, 1], s[0], s[1], st.sigma_yy[0, 0])))


def _one_step(system, names, spec, params_list, st, via_simulate=False):
    """Compare one library gradient step (η = 1) and its recorded loss with the system."""
    import dlnfusion as dln

    mats, L, rhs = system
    if via_simulate:
        traj = dln.simulate(spec, st, seeds=[7], scale=0.8, lr=1.0, steps=1, record_every=1,
                            stop_loss=None)
        p0 = traj.initial_params
    else:
        p0 = params_list
        traj = dln.train(spec, st, p0, lr=1.0, steps=1, record_every=1, stop_loss=None)
    flat0 = [np.asarray(W)[0] for layers in p0.branches for W in layers] + \
        [np.asarray(W)[0] for W in p0.post]
    flat1 = [np.asarray(W)[0] for layers in traj.final_params.branches for W in layers] + \
        [np.asarray(W)[0] for W in traj.final_params.post]
    sub = dict(_moment_values(st))
    for name, W in zip(names, flat0):
        sub.update({mats[name][i, j]: W[i, j] for i in range(W.shape[0])
                    for j in range(W.shape[1])})
    for name, W0, W1 in zip(names, flat0, flat1):
        want = np.array(rhs[name].subs(sub), dtype=float)
        _close(W1 - W0, want, RTOL_FLOAT, f"gradient step of {name}")
    # The recorded training loss at t = 0 (the simulator's shifted form L* + ½DΣDᵀ).
    _close(traj.loss[0, 0], float(L.subs(sub)), RTOL_FLOAT, "recorded loss",
           scale=st.mean_sq_output)
    return True


def check_two_layer_late_fusion():
    """One step of dlnfusion.train (given weights) and of dlnfusion.simulate (random weights)
    on a width-2 two-layer late-fusion network against eq. (18) and the loss."""
    import dlnfusion as dln

    spec = dln.NetworkSpec.fusion(2, 2, width=2)
    h = 2
    system = _late_fusion_system(h)
    W = lambda *rows: np.array(rows, dtype=float)[None]  # noqa: E731  (batch of one run)
    params = dln.Params(((W([0.7], [-0.4]), W([0.5, 1.1])), (W([0.3], [0.9]), W([-0.8, 0.2]))),
                        ())
    for st in _sample_stats():
        _one_step(system, ("A1", "A2", "B1", "B2"), spec, params, st)
        _one_step(system, ("A1", "A2", "B1", "B2"), spec, None, st, via_simulate=True)
    return True


def check_intermediate_fusion():
    """One step of dlnfusion.train on a width-2 network with L = 3, L_f = 2 against
    eqs. (3a), (3b), (4) and the loss."""
    import dlnfusion as dln

    spec = dln.NetworkSpec.fusion(3, 2, width=2)
    system = _intermediate_system(2)
    W = lambda *rows: np.array(rows, dtype=float)[None]  # noqa: E731
    params = dln.Params(((W([0.7], [-0.4]), W([0.5, 1.1], [-0.3, 0.6])),
                         (W([0.3], [0.9]), W([-0.8, 0.2], [0.4, 0.5]))), (W([0.9, -0.6]),))
    for st in _sample_stats():
        _one_step(system, ("A1", "A2", "B1", "B2", "W3"), spec, params, st)
    return True


def _shifted_forms():
    sa2, sb2, sab, ya, yb, yy = _moments()
    S = sp.Matrix([[sa2, sab], [sab, sb2]])
    s = sp.Matrix([[ya, yb]])
    Wstar = s * S.inv()
    Lstar = sp.Rational(1, 2) * (yy - (s * S.inv() * s.T)[0, 0])
    return S, Wstar, Lstar


def derive_shifted_loss():
    """½⟨(y − Wx)²⟩ = L* + ½(W − W*)Σ(W − W*)ᵀ with W* = Σ_yxΣ^{-1}, for 2×2 Σ."""
    sa2, sb2, sab, ya, yb, yy = _moments()
    S, Wstar, Lstar = _shifted_forms()
    W = sp.Matrix([sp.symbols("W_A W_B", real=True)])
    L = _loss(W[0], W[1], (sa2, sb2, sab, ya, yb, yy))
    shifted = Lstar + sp.Rational(1, 2) * ((W - Wstar) * S * (W - Wstar).T)[0, 0]
    assert sp.simplify(L - shifted) == 0
    return True


def check_shifted_loss():
    """Stats.loss, Stats.min_loss and Stats.global_solution against _loss, L* and W*."""
    m = _moments()
    S, Wstar, Lstar = _shifted_forms()
    WA, WB = sp.symbols("W_A W_B", real=True)
    loss = sp.lambdify((WA, WB) + m, _loss(WA, WB, m))
    f = sp.lambdify(m, [Lstar, Wstar[0], Wstar[1]])
    for st in _sample_stats():
        v = list(_moment_values(st).values())
        l_star, wa, wb = f(*v)
        yy = st.mean_sq_output
        _close(st.min_loss(), l_star, RTOL_FLOAT, "Stats.min_loss", scale=yy)
        _close(st.global_solution().ravel(), [wa, wb], RTOL_FLOAT, "Stats.global_solution")
        for W in ((0.0, 0.0), (0.4, -1.3), (2.5, 0.7)):
            _close(st.loss(np.array([W])), loss(*W, *v), RTOL_FLOAT, "Stats.loss", scale=yy)
    return True


_LOGIT = sp.symbols("p0:2 q0:2", real=True)


def _logistic_eigenvalues():
    """K = ½(a₁a₂ᵀ + a₂a₁ᵀ) for y = a₁·z, ŷ = a₂·z, and its eigenvalues ½(a₁·a₂ ± ‖a₁‖‖a₂‖)."""
    a1, a2 = sp.Matrix(_LOGIT[:2]), sp.Matrix(_LOGIT[2:])
    K = (a1 * a2.T + a2 * a1.T) / 2
    dot = (a1.T * a2)[0, 0]
    n1, n2 = sp.sqrt((a1.T * a1)[0, 0]), sp.sqrt((a2.T * a2)[0, 0])
    return K, ((dot + n1 * n2) / 2, (dot - n1 * n2) / 2)


def derive_gaussian_logistic():
    """The exact logistic loss of jointly Gaussian (y, ŷ) used by dlnfusion.losses.

    1. yŷ = (a₁·z)(a₂·z) = zᵀKz with K = ½(a₁a₂ᵀ + a₂a₁ᵀ), whose eigenvalues are
       λ± = ½(a₁·a₂ ± ‖a₁‖‖a₂‖) = ½(cov ± σ_yσ_ŷ): yŷ = λ₊u₁² + λ₋u₂².
    2. Polar coordinates, t = r²/2: E g(yŷ) = (1/2π)∫dθ ∫₀^∞ g(2t q(θ)) e^{−t} dt with
       q = λ₊cos²θ + λ₋sin²θ.
    3. ln(1 + e^{−v}) = max(−v, 0) + ln(1 + e^{−|v|}); ∫₀^∞ max(−2qt, 0)e^{−t}dt = max(−2q, 0).
    4. h(c) = ∫₀^∞ ln(1 + e^{−ct})e^{−t}dt = Σ_{n≥1}(−1)^{n+1}/(n(cn + 1))
       = ln 2 − ½[ψ(1/(2c) + 1) − ψ(1/(2c) + ½)] (checked to 25 digits at several c).
    5. Near q = 0: H(q) = ln 2 − q + q² − 2q⁴ + O(q⁶).
    """
    import mpmath as mp

    K, roots = _logistic_eigenvalues()
    lam = sp.symbols("lam")
    charpoly = sp.expand((K - lam * sp.eye(2)).det())
    for root in roots:
        assert sp.simplify(charpoly.subs(lam, root)) == 0
    t, r, q = sp.symbols("t r q", positive=True)
    # r dr e^{-r²/2} = e^{-t} dt with t = r²/2, and r² q = 2 t q.
    assert sp.simplify(sp.diff(r ** 2 / 2, r) - r) == 0
    assert sp.integrate(2 * q * t * sp.exp(-t), (t, 0, sp.oo)) == 2 * q
    with mp.workdps(30):
        for c in (mp.mpf("0.01"), mp.mpf("0.37"), mp.mpf(2), mp.mpf(50)):
            direct = mp.quad(lambda x: mp.log(1 + mp.exp(-c * x)) * mp.exp(-x), [0, 1, mp.inf])
            series = mp.nsum(lambda n: (-1) ** (n + 1) / (n * (c * n + 1)), [1, mp.inf])
            assert abs(direct - series) < mp.mpf("1e-20")
            assert abs(direct - _h_closed(c)) < mp.mpf("1e-20")
    u = sp.Symbol("u")
    qq = sp.Symbol("q", real=True)
    series = sp.series(sp.log(1 + sp.exp(-u)), u, 0, 6).removeO()
    H = sp.integrate(sp.expand(series.subs(u, 2 * qq * t)) * sp.exp(-t), (t, 0, sp.oo))
    assert sp.simplify(H - (sp.log(2) - qq + qq ** 2 - 2 * qq ** 4)) == 0
    return True


def _h_closed(c):
    """h(c) of step 4 in mpmath."""
    import mpmath as mp

    return mp.log(2) - (mp.digamma(1 / (2 * c) + 1) - mp.digamma(1 / (2 * c) + mp.mpf(1) / 2)) / 2


def _logistic_reference(var_y, var_h, cov):
    """E ln(1 + e^{−yŷ}) from steps 1-4: (1/2π)∮ H(q(θ)) dθ over the whole circle, with
    H(q) = h(2|q|) + max(−2q, 0) (h(0) = ln 2), by mpmath at 20 digits."""
    import mpmath as mp

    K, roots = _logistic_eigenvalues()
    # Any a₁, a₂ with ‖a₁‖² = var_y, ‖a₂‖² = var_h and a₁·a₂ = cov: a₁ = (σ_y, 0).
    sy, sh = np.sqrt(var_y), np.sqrt(var_h)
    c = cov / (sy * sh)
    vals = dict(zip(_LOGIT, (sy, 0.0, sh * c, sh * np.sqrt(max(1 - c * c, 0.0)))))
    lp, lm = (mp.mpf(float(r.subs(vals))) for r in roots)

    def H(q):
        return mp.log(2) if q == 0 else _h_closed(2 * abs(q)) + max(-2 * q, 0)

    with mp.workdps(20):
        q = lambda th: lp * mp.cos(th) ** 2 + lm * mp.sin(th) ** 2  # noqa: E731
        # q changes sign where tan²θ = −λ₊/λ₋: split the circle there.
        cuts = [mp.mpf(0), 2 * mp.pi]
        if lp > 0 > lm:
            t0 = mp.atan(mp.sqrt(-lp / lm))
            cuts = [mp.mpf(0), t0, mp.pi - t0, mp.pi + t0, 2 * mp.pi - t0, 2 * mp.pi]
        return float(mp.quad(lambda th: H(q(th)), cuts) / (2 * mp.pi))


def check_gaussian_logistic():
    """dlnfusion.losses.gaussian_logistic against _logistic_reference, from tiny weights to
    weights of size 1000 (eigenvalues |λ±| up to ~2000, where the kernel varies on a θ-scale of
    1/|λ| next to the sign change of q) and for both signs of cov(y, ŷ). The tolerance is the
    library's stated accuracy, ~1e-12 (12-node Gauss–Legendre on pieces graded toward the sign
    change, digamma form of h); measured ≤ 1.1e-13 on these samples."""
    from dlnfusion import Stats
    from dlnfusion.losses import gaussian_logistic

    for st in (Stats.scalar_toy(1.3, 0.8, 0.4, w_a=1.0, w_b=-0.5),
               Stats.random(dim=4, seed=1)):
        D = st.input_dim
        for W in (np.full((1, D), 1e-3), np.linspace(0.3, -0.2, D)[None],
                  np.linspace(1.0, 2.0, D)[None], np.linspace(-3.0, 1.0, D)[None],
                  np.linspace(2.0, 3.0, D)[None], 14 * np.linspace(0.6, 0.8, D)[None],
                  40 * np.linspace(-0.6, 0.8, D)[None], 300 * np.linspace(1.0, 0.1, D)[None],
                  1000 * np.linspace(0.3, -0.9, D)[None]):
            var_y = float(st.sigma_yy[0, 0])
            var_h = float((W @ st.sigma @ W.T)[0, 0])
            cov = float((W @ st.sigma_yx.T)[0, 0])
            got = float(gaussian_logistic(W, st.sigma, st.sigma_yx, st.sigma_yy))
            _close(got, _logistic_reference(var_y, var_h, cov), 1e-12,
                   f"gaussian_logistic at cov = {cov:.3g}")
    return True


def derive_all():
    return all([derive_two_layer_late_fusion(), derive_intermediate_fusion(),
                derive_shifted_loss(), derive_gaussian_logistic()])


def check_all():
    return all([check_two_layer_late_fusion(), check_intermediate_fusion(), check_shifted_loss(),
                check_gaussian_logistic()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("losses:", derive_all(), "checked against dlnfusion:", check_all())
