"""Sensory deficits on the second-learned modality and the delay of t_B (dlnfusion.theory.deficits).

Kleinman, Achille & Soatto (CVPR 2023) degrade one source for the first N epochs; here the
linear fusion networks of Zhang, Latham & Saxe (ICML 2024) with two scalar modalities, A
learned first and B degraded during steps [0, N). What the derivations establish:

* the deficits' moments and the drives they give (deletion: no gradient on B's branch at all;
  blur: B's drive times c, its curvature c²σ̃_B² + σ_n²; dissociation: every drive halved at
  small weights, A's window plateau U_A/2 = the t_A level, B's s_B/(2σ_B²) = w_B*/2 when
  Σ_AB = 0: the two knife-edges);
* the scalar model of a blur (a projection onto a band): attenuation f, noise f(1 − f)σ²;
* late fusion: B's branch gradient is ε_B ∇W_B, so B's state is a function of its accumulated
  drive Λ = ∫ε_B; the deficit run is the normal run shifted by the missed drive over the
  second-phase rate (the time-shift theorem) and its closed forms for the three deficits;
* the per-step growth rate of a two-layer mode under gradient descent, r(ε) = ln(1 + ηε)/η;
* the logistic in logit units (crossing inside the window), the relaxation integral of A
  back from a window plateau (the bonus K);
* early fusion: the linear relaxation of B's column once the shared layers carry A;
* intermediate fusion: B's chain grows at ε‖P‖ (L_f = 2, and times ‖W_B¹‖ for L_f >= 3), and
  the criterion of eq. (45) for when B feeds the shared layers (L_f <= 2);
* the shared-layer clock: a window that runs a state at speed κ shifts A's escape by (1 − κ)N.

Every check_* evaluates the derived closed forms at sample points and compares them with the
dlnfusion function that implements them (same closed form in float64: 1e-12).
"""
import numpy as np
import sympy as sp

from _checks import close_each as _close
from _checks import random_params, toy_loss, toy_symbols

# The library evaluates the same closed forms in float64; a few roundings (~1e-15) apart.
# Where a time is a sum of terms of size ~1e3 the absolute rounding is ~1e-12 of it.
RTOL_FLOAT = 1e-12
# deficit_times for two-layer networks goes through the logistic in logit units,
# −logit(x_N)/(2η) for the progress B still needs; for the small x_N of these checks
# (x_N ~ e^{-30}) it differs from the linear accounting Q⁰ − Λ'(N) by ln(1 − x_N)/(2η) and the
# float64 rounding of logit at x_N ~ 1e-13 (1e-16 relative of ~30, over 2η): below 1e-10.
RTOL_LOGIT = 1e-10


def _toy_stats():
    """Sample statistics: correlated, uncorrelated, negatively correlated, B learned first."""
    from dlnfusion import Stats

    return [Stats.scalar_toy(2.0, 1.0, 0.5), Stats.scalar_toy(2.0, 1.0, 0.0),
            Stats.scalar_toy(3.0, 1.0, -0.3), Stats.scalar_toy(1.0, 2.0, 0.3)]


def _moments(st):
    """(Σ_A, Σ_B, Σ_AB, s_A, s_B) with A := the first-learned modality."""
    from dlnfusion import theory as th

    r = th.roles(st)
    a, b = r.first, r.second
    f = lambda m, n: float(np.asarray(st.block(m, n)).ravel()[0])  # noqa: E731
    return (f(a, a), f(b, b), f(a, b), float(np.asarray(r.s_a).ravel()[0]),
            float(np.asarray(r.s_b).ravel()[0])), st.names[b]


def _windows(st, second, c=0.3, sn=0.4):
    from dlnfusion.interventions import blur, delete, dissociate

    return {"delete": delete(st, second), "blur": blur(st, second, c, sn),
            "dissociate": dissociate(st)}


# ---------------------------------------------------------------------- drives of the deficits
def _drives(m):
    """ε_A, ε_B = −∂L/∂W_A, −∂L/∂W_B of the toy loss with moments m."""
    WA, WB = sp.symbols("W_A W_B", real=True)
    L = toy_loss(WA, WB, m)
    return WA, WB, sp.expand(-sp.diff(L, WA)), sp.expand(-sp.diff(L, WB))


def _drive_expressions():
    """Closed forms of the quantities deficit_drives returns, in the toy symbols."""
    sa2, sb2, sab, ya, yb, yy = m = toy_symbols()
    c, sn = sp.symbols("c sigma_n", positive=True)
    UA = ya / sa2
    s_bt = yb - UA * sab
    v_bt = sb2 - sab ** 2 / sa2
    windows = {"delete": (sa2, 0, 0, ya, 0, yy),
               "blur": (sa2, c ** 2 * sb2 + sn ** 2, c * sab, ya, c * yb, yy),
               "dissociate": (sa2, sb2, 0, ya / 2, yb / 2, yy)}
    out = {}
    for name, w in windows.items():
        UAw = w[3] / w[0]
        s_btw = w[4] - UAw * w[2]
        v_btw = w[1] - w[2] ** 2 / w[0]
        out[name] = dict(plateau_a=UA, s_b_tilde=s_bt, var_b_tilde=v_bt, final_b=s_bt / v_bt,
                         w_plateau_a=UAw, w_s_b_tilde=s_btw, w_var_b_tilde=v_btw,
                         w_plateau_b=0 if name == "delete" else s_btw / v_btw,
                         drive_ratio=sp.sqrt(w[3] ** 2 + w[4] ** 2) / sp.sqrt(ya ** 2 + yb ** 2))
    return m, (c, sn), windows, out


def derive_deficit_drives():
    """What each deficit does to the drives ε_m = −∂L/∂W_m (toy loss, scalar modalities).

    Deletion: ε_B ≡ 0 for every (W_A, W_B), so every parameter of B's branch has zero gradient
    (θ_B enters the loss only through W_B^tot: ∂L/∂θ_B = −ε_B ∂W_B/∂θ_B, derive_late_fusion_
    reparametrization), while A's drive at W_B = 0 is unchanged. Blur: at W_B = 0, ε_B' = c ε_B
    and ε_A' = ε_A for every W_A (both phases), B's curvature −∂ε_B'/∂W_B = c²σ_B² + σ_n², and
    B's plateau with A adiabatic is c s̃_B/(c²σ̃_B² + σ_n²). Dissociation: at W = 0 every drive
    halves; the plateaus are U_A/2 (always: t_A's own level) and s_B/(2σ_B²), which is
    w_B*/2 when Σ_AB = 0. The normal final weight of B is w_B* = s̃_B/σ̃_B²."""
    m, (c, sn), windows, out = _drive_expressions()
    sa2, sb2, sab, ya, yb, yy = m
    WA, WB, eA, eB = _drives(m)
    sol = sp.solve([eA, eB], [WA, WB], dict=True)[0]
    assert sp.simplify(sol[WB] - out["blur"]["final_b"]) == 0
    _, _, eAd, eBd = _drives(windows["delete"])
    assert eBd == 0
    assert sp.simplify(eAd - eA.subs(WB, 0)) == 0
    _, _, eAb, eBb = _drives(windows["blur"])
    assert sp.simplify(eBb.subs(WB, 0) - c * eB.subs(WB, 0)) == 0
    assert sp.simplify(eAb.subs(WB, 0) - eA.subs(WB, 0)) == 0
    assert sp.simplify(-sp.diff(eBb, WB) - (c ** 2 * sb2 + sn ** 2)) == 0
    solb = sp.solve([eAb, eBb], [WA, WB], dict=True)[0]
    assert sp.simplify(solb[WB] - out["blur"]["w_plateau_b"]) == 0
    assert sp.simplify(out["blur"]["w_var_b_tilde"]
                       - (c ** 2 * out["blur"]["var_b_tilde"] + sn ** 2)) == 0
    assert sp.simplify(out["blur"]["w_s_b_tilde"] - c * out["blur"]["s_b_tilde"]) == 0
    _, _, eAs, eBs = _drives(windows["dissociate"])
    zero = {WA: 0, WB: 0}
    assert sp.simplify(eAs.subs(zero) - eA.subs(zero) / 2) == 0
    assert sp.simplify(eBs.subs(zero) - eB.subs(zero) / 2) == 0
    sols = sp.solve([eAs, eBs], [WA, WB], dict=True)[0]
    assert sp.simplify(sols[WA] - ya / sa2 / 2) == 0                      # the t_A level
    assert sp.simplify(sols[WB] - yb / (2 * sb2)) == 0
    assert sp.simplify((sols[WB] - sol[WB] / 2).subs(sab, 0)) == 0       # the t_B level
    return True


def check_deficit_drives():
    """theory.deficits.deficit_drives on dlnfusion's deficit moments against _drive_expressions, for
    correlated, uncorrelated, anti-correlated toys and one where B is learned first."""
    from dlnfusion import theory as th

    m, (c, sn), _, out = _drive_expressions()
    cv, snv = 0.3, 0.4
    for st in _toy_stats():
        mom, second = _moments(st)
        vals = {m[0]: mom[0], m[1]: mom[1], m[2]: mom[2], m[3]: mom[3], m[4]: mom[4],
                c: cv, sn: snv}
        for name, ws in _windows(st, second, cv, snv).items():
            d = th.deficits.deficit_drives(st, ws)
            assert d.deleted == (name == "delete"), name
            for key, expr in out[name].items():
                want = float(sp.sympify(expr).subs(vals))
                _close(getattr(d, key), want, RTOL_FLOAT, f"{name}.{key}", scale=1e-12)
    return True


# ---------------------------------------------------------------------- blur as a projection
def derive_projection_blur():
    """A low-pass filter is a projection P; for an isotropic source (Σ = σ²I) the best linear
    read-out from Px of the feature z = uᵀx (‖u‖ = 1) is x̃ = uᵀPx, with Var x̃ = Cov(x̃, z) =
    fσ², f = ‖Pu‖². As a scalar copy of z: x̃ = f z + n with n uncorrelated with z and
    Var n = f(1 − f)σ². With c = f and σ_n² = f(1 − f)σ_B², the blurred plateau
    c s_B/(c²σ_B² + σ_n²) is the original s_B/σ_B² (Σ_AB = 0)."""
    sig = sp.Symbol("sigma", positive=True)
    u = sp.Matrix(sp.symbols("u0:3", real=True))
    P = sp.diag(1, 1, 0)                                  # any projection, in its own basis
    S = sig ** 2 * sp.eye(3)
    # least-squares read-out of z = uᵀx from Px: β = (PΣP)⁺ PΣu = Pu on the band
    beta = P * u
    assert sp.simplify(P * S * P * beta - P * S * u) == sp.zeros(3, 1)
    f = (u.T * P * u)[0, 0]
    var_xt = (beta.T * P * S * P * beta)[0, 0]
    cov_xt_z = (beta.T * P * S * u)[0, 0]
    assert sp.simplify(var_xt - f * sig ** 2) == 0
    assert sp.simplify(cov_xt_z - f * sig ** 2) == 0
    cz = sp.Symbol("f", positive=True)                    # write it with f as a symbol
    var_z = sig ** 2
    noise = (cz * sig ** 2 - 2 * cz * cz * sig ** 2 + cz ** 2 * var_z)   # Var(x̃ − f z)
    assert sp.simplify(noise - cz * (1 - cz) * sig ** 2) == 0
    assert sp.simplify(cz * sig ** 2 - cz * var_z) == 0   # Cov(x̃ − f z, z) = 0
    sb, s_b = sp.symbols("sigma_B s_B", positive=True)
    plateau = cz * s_b / (cz ** 2 * sb ** 2 + cz * (1 - cz) * sb ** 2)
    assert sp.simplify(plateau - s_b / sb ** 2) == 0
    return True


def check_projection_blur():
    """theory.deficits.projection_blur against (f, σ√(f(1 − f)))."""
    from dlnfusion import theory as th

    for f, s in ((0.25, 1.0), (0.1, 2.0), (1.0, 0.5), (0.5, 3.0)):
        c, sn = th.deficits.projection_blur(f, s)
        _close([c, sn], [f, s * np.sqrt(f * (1 - f))], RTOL_FLOAT, "projection_blur",
               scale=1e-12)
    return True


# ---------------------------------------------------------------------- late fusion
def derive_late_fusion_reparametrization():
    """Late fusion, scalar modalities: the gradient of every parameter θ of B's branch is
    −ε_B ∂W_B/∂θ (shown for a depth-3 branch with two hidden units), so gradient flow is
    dθ/dt = η ε_B(t) ∇W_B(θ) and θ(t) = φ(Λ(t)) with Λ' = ε_B, φ' = η∇W_B(φ) (shown for a
    two-layer branch: a = a0 cosh ηΛ + b0 sinh ηΛ, b = b0 cosh ηΛ + a0 sinh ηΛ for any ε_B(t)).
    Time shift: runs that follow the same autonomous flow once A has saturated, one of them
    behind by δΛ while B is small (rate r̃), cross the same level δΛ/r̃ apart. No dlnfusion
    counterpart of its own: it is the principle of deficit_times (late fusion), checked in
    check_time_shift_delay."""
    sa2, sb2, sab, ya, yb, yy = m = toy_symbols()
    w1 = sp.Matrix(sp.symbols("p0:2", real=True))
    M = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"q{i}{j}", real=True))
    w3 = sp.Matrix([sp.symbols("r0:2", real=True)])
    WA = sp.Symbol("W_A", real=True)
    WB_expr = (w3 * M * w1)[0, 0]
    L = toy_loss(WA, WB_expr, m)
    eps_B = yb - sab * WA - sb2 * WB_expr
    for th_ in list(w1) + list(M) + list(w3):
        assert sp.simplify(sp.diff(L, th_) + eps_B * sp.diff(WB_expr, th_)) == 0
    # the time change, two-layer branch (W_B = a b): a' = η ε b, b' = η ε a
    t, eta = sp.Symbol("t", real=True), sp.Symbol("eta", positive=True)
    a0, b0 = sp.symbols("a_0 b_0", real=True)
    Lam = sp.Function("Lambda")(t)
    eps = sp.diff(Lam, t)
    a = a0 * sp.cosh(eta * Lam) + b0 * sp.sinh(eta * Lam)
    b = b0 * sp.cosh(eta * Lam) + a0 * sp.sinh(eta * Lam)
    assert sp.simplify(sp.diff(a, t) - eta * eps * b) == 0
    assert sp.simplify(sp.diff(b, t) - eta * eps * a) == 0
    # the time shift: Λ_d(t) = Λ_n(t) − δΛ at rate r̃ ⇒ Λ_d(t_B⁰ + δΛ/r̃) = Λ_n(t_B⁰)
    tb0, dL, rt, L0 = sp.symbols("t_B0 delta_Lambda r_t Lambda_0", positive=True)
    lam_n = lambda s: L0 + rt * (s - tb0)  # noqa: E731
    assert sp.simplify((lam_n(tb0 + dL / rt) - dL) - lam_n(tb0)) == 0
    return True


def _late_delays():
    """Δ = t_B(N) − t_B⁰ of late fusion for the sharp switch of A at t_A, rates b = r(s_B),
    bt = r(s̃_B): deletion (N <= t_A, N >= t_A), blur with rates c·b, c·bt (flow), and
    dissociation for N < t_A/κ (A's clock κ, B's window rate r_h)."""
    N, tA, b, bt, c, kappa, rh = sp.symbols("N t_A b b_t c kappa r_h", positive=True)
    lam_before = b * N                     # Λ(N), N <= t_A
    lam_after = b * tA + bt * (N - tA)     # Λ(N), N >= t_A
    dele = {"before": lam_before / bt, "after": lam_after / bt}
    blur = {k: (1 - c) * v for k, v in dele.items()}
    # dissociation: window drive rh for N; A escapes at tAd = t_A + (1 − κ)N after the window
    T = sp.Symbol("T", positive=True)
    tAd = tA + (1 - kappa) * N
    lam_d = rh * N + b * (tAd - N) + bt * (T - tAd)
    lam_n = b * tA + bt * (T - tA)
    diss = sp.simplify((lam_n - lam_d) / bt)
    return (N, tA, b, bt, c, kappa, rh), dele, blur, diss


def derive_time_shift_delay():
    """Closed forms of the late-fusion delay (flow rates r(ε) = ε): deletion Δ = N s_B/s̃_B
    while N <= t_A, N + (s_B/s̃_B − 1)t_A after; blur (1 − c)× that; dissociation Δ = N/2 while
    N < 2t_A (κ = 1/2, r_h = s_B/2), independent of ρ."""
    (N, tA, b, bt, c, kappa, rh), dele, blur, diss = _late_delays()
    assert sp.simplify(dele["after"] - (N + (b / bt - 1) * tA)) == 0
    assert sp.simplify(dele["before"].subs(N, tA) - dele["after"].subs(N, tA)) == 0  # continuous
    assert sp.simplify(diss.subs({kappa: sp.Rational(1, 2), rh: b / 2}) - N / 2) == 0
    assert sp.simplify(blur["after"] - (1 - c) * (N + (b / bt - 1) * tA)) == 0
    return True


def _late_case(st, name, ws, N, L, lr, ta0, tb0):
    """Expected late-fusion t_B from _late_delays for one case (GD rates for L = 2)."""
    from dlnfusion import theory as th

    (Ns, tAs, bs, bts, cs, ks, rhs), dele, blur, diss = _late_delays()
    d = th.deficits.deficit_drives(st, ws)
    r = lambda e: float(th.deficits.growth_rate(e, lr, L))  # noqa: E731
    b, bt = r(d.s_b), r(d.s_b_tilde)
    vals = {Ns: N, tAs: ta0, bs: b, bts: bt}
    when = "before" if N <= ta0 else "after"
    if name == "delete":
        delay = dele[when].subs(vals)
    elif name == "blur":
        # the window's rates are r(c s_B), r(c s̃_B): for the flow (L > 2) exactly c·b, c·bt
        cf = (1 - r(d.w_s_b) / b) if L > 2 else None
        if L > 2:
            delay = blur[when].subs({**vals, cs: 1 - cf})
        else:   # two-layer rates are not proportional: Λ' written out
            lam_w = r(d.w_s_b) * min(N, ta0) + r(d.w_s_b_tilde) * max(N - ta0, 0.0)
            delay = (dele[when].subs(vals) * bt - lam_w) / bt
    else:
        kappa = r(d.w_s_a) / r(d.s_a)
        delay = diss.subs({**vals, ks: kappa, rhs: r(d.w_s_b)})
    return tb0 + float(delay)


def check_time_shift_delay():
    """theory.deficit_times, late fusion (L = 4 with flow rates, L = 2 with gradient-descent
    rates), against _late_delays: deletion and blur before and after A's transition,
    dissociation while the window ends before A's (dilated) escape."""
    from dlnfusion import theory as th

    lr = 0.04
    for st in _toy_stats()[:3]:
        mom, second = _moments(st)
        for L, ta0, tb0 in ((4, 1300.0, 7600.0), (2, 110.0, 480.0)):
            for name, ws in _windows(st, second, 0.25, 0.43).items():
                d = th.deficits.deficit_drives(st, ws)
                Ns = (0.4 * ta0, 0.9 * ta0, 1.5 * ta0, 3.0 * ta0)
                if name == "dissociate":
                    kappa = float(th.deficits.growth_rate(d.w_s_a, lr, L) / th.deficits.growth_rate(d.s_a, lr, L))
                    Ns = tuple(n for n in Ns if kappa * n < ta0)
                if name == "blur" and L == 2:
                    Ns = Ns[:3]    # B would cross inside a long blur window (window logistic)
                got = th.deficit_times(st, ws, np.array(Ns), depth=L, fusion_layer=L, lr=lr,
                                       t_a0=ta0, t_b0=tb0)
                want = [_late_case(st, name, ws, n, L, lr, ta0, tb0) for n in Ns]
                _close(got.t_B, want, RTOL_FLOAT if L > 2 else RTOL_LOGIT,
                       f"late fusion L={L}, {name}")
    return True


# ---------------------------------------------------------------------- growth rates
def derive_growth_rate():
    """The growing mode α = (W¹ê + W²ᵀ)/√2 of a two-layer branch obeys α' = (1 + ηε)α for any
    ε of the step (theory/saxe.py derive_gd_modes), so after steps with ε_0, ε_1, ...
    ln α_n − ln α_0 = Σ ln(1 + ηε_k) = η Σ r(ε_k), r(ε) = ln(1 + ηε)/η = ε − ηε²/2 + O(η²):
    the flow rate ε of deep chains (whose per-step growth is small) is its η → 0 limit."""
    eta, e = sp.symbols("eta epsilon", positive=True)
    r = sp.log(1 + eta * e) / eta
    assert sp.limit(r, eta, 0) == e
    assert sp.simplify(sp.series(r, eta, 0, 2).removeO() - (e - eta * e ** 2 / 2)) == 0
    es = sp.symbols("e0:3", positive=True)
    alpha = sp.prod([1 + eta * x for x in es])
    assert sp.simplify(sp.expand_log(sp.log(alpha), force=True)
                       - eta * sum(sp.log(1 + eta * x) / eta for x in es)) == 0
    return True


def check_growth_rate():
    """theory.deficits.growth_rate against ln(1 + ηε)/η (L = 2) and ε (L >= 3)."""
    from dlnfusion import theory as th

    eta, e = sp.symbols("eta epsilon", positive=True)
    f = sp.lambdify((eta, e), sp.log(1 + eta * e) / eta)
    eps = np.array([0.1, 0.75, 2.0, 5.0])
    for lr in (0.04, 0.01):
        _close(th.deficits.growth_rate(eps, lr, 2), f(lr, eps), RTOL_FLOAT, "growth_rate(L = 2)")
        for L in (3, 4):
            _close(th.deficits.growth_rate(eps, lr, L), eps, RTOL_FLOAT, f"growth_rate(L = {L})")
    return True


# ---------------------------------------------------------------------- logistic pieces
def derive_window_logistic():
    """Two-layer B with A adiabatic: τẇ = 2w(s̃ − σ̃²w) gives d logit(w/p)/dt = 2s̃/τ
    (p = s̃/σ̃²), and for small w, logit(w/p') = logit(w/w*) + ln(w*/p') + O(w). So with the
    baseline's needed progress Q⁰ (logit(w₀/w*) = −2ηQ⁰), B crosses w*/2 inside a window whose
    plateau is p' > w*/2 when 2ηΛ'(t) = 2ηQ⁰ + logit(w*/(2p')) + ln(p'/w*); with p' = w*/2
    (dissociation, Σ_AB = 0) never inside: the knife-edge. Checked in check_window_logistic."""
    t, tau = sp.symbols("t tau", positive=True)
    s, v = sp.symbols("s v", positive=True)
    w = sp.Function("w")(t)
    p = s / v
    rhs = 2 * w * (s - v * w) / tau
    dlogit = sp.diff(sp.log(w / p) - sp.log(1 - w / p), t).subs(sp.Derivative(w, t), rhs)
    assert sp.simplify(dlogit - 2 * s / tau) == 0
    x, ws, pw = sp.symbols("x w_star p_w", positive=True)
    lhs = sp.log(x / pw) - sp.log(1 - x / pw)
    rhs2 = sp.log(x / ws) - sp.log(1 - x / ws) + sp.log(ws / pw)
    assert sp.limit(lhs - rhs2, x, 0) == 0
    # crossing level w*/2 relative to p': y_c = w*/(2p') < 1 iff p' > w*/2
    assert sp.simplify((ws / (2 * pw)).subs(pw, ws / 2)) == 1
    return True


def check_window_logistic():
    """theory.deficit_times: two-layer late fusion, a blur window long enough for B to cross
    inside it, against the crossing condition of derive_window_logistic (rates r(c s_B) before
    t_A⁰, r(c s̃_B) after)."""
    from dlnfusion import theory as th

    lr, ta0, tb0 = 0.04, 120.0, 470.0
    for st in _toy_stats()[:2]:
        mom, second = _moments(st)
        ws = _windows(st, second, 0.25, 0.43)["blur"]
        d = th.deficits.deficit_drives(st, ws)
        r = lambda e: float(th.deficits.growth_rate(e, lr, 2))  # noqa: E731
        Q0 = r(d.s_b) * ta0 + r(d.s_b_tilde) * (tb0 - ta0)
        pw, wstar = d.w_plateau_b, d.final_b
        yc = wstar / (2 * pw)
        Qc = Q0 + (np.log(yc / (1 - yc)) + np.log(pw / wstar)) / (2 * lr)
        q1 = r(d.w_s_b) * ta0
        want = ta0 + (Qc - q1) / r(d.w_s_b_tilde)
        got = th.deficit_times(st, ws, np.array([20000.0]), depth=2, fusion_layer=2, lr=lr,
                               t_a0=ta0, t_b0=tb0)
        assert "inside-window" in got.regime[0]
        _close(got.t_B, [want], RTOL_FLOAT, "window crossing (blur)")
    return True


def derive_relaxation_integral():
    """A learned mode relaxing from x₀ = U_A'/U_A to 1 gives B the extra drive
    Σ_AB U_A ∫(1 − x)dt: two-layer (τẋ = 2s x(1 − x)) ∫ = τ ln(1/x₀)/(2s); deep pathway
    (τẇ = L w^{2−2/L}(s − σ²w), w = U x: τẋ = L U^{1−2/L} s x^{2−2/L}(1 − x))
    ∫ = τ(x₀^{2/L−1} − 1)/((L − 2) U^{1−2/L} s). Checked in check_relaxation_integral."""
    x, x0, s, U, tau, sig2 = sp.symbols("x x_0 s U tau sigma2", positive=True)
    two = sp.integrate((1 - x) * tau / (2 * s * x * (1 - x)), (x, x0, 1))
    assert sp.simplify(two - tau * sp.log(1 / x0) / (2 * s)) == 0
    for L in (3, 4, 5):
        w = U * x
        wdot = L * w ** (2 - sp.Rational(2, L)) * (s - (s / U) * w) / tau   # σ² = s/U
        xdot = sp.simplify(wdot / U)
        assert sp.simplify(xdot - L * U ** (1 - sp.Rational(2, L)) * s
                           * x ** (2 - sp.Rational(2, L)) * (1 - x) / tau) == 0
        deep = sp.integrate(sp.simplify((1 - x) / xdot), (x, x0, 1))
        want = tau * (x0 ** (sp.Rational(2, L) - 1) - 1) / ((L - 2) * U ** (1 - sp.Rational(2, L))
                                                            * s)
        assert sp.simplify(deep - want) == 0
    return True


def check_relaxation_integral():
    """theory.deficit_times, two-layer late fusion with a dissociation window that A escapes in
    (it sits at U_A/2) but B does not cross: t_B = N + (Q⁰ − Λ'(N) − K)/r(s̃_B), K from
    derive_relaxation_integral (x₀ = 1/2, τ = 1/η, to first order in the extra drive)."""
    from dlnfusion import theory as th

    lr, ta0, tb0 = 0.04, 100.0, 470.0
    st = _toy_stats()[0]
    mom, second = _moments(st)
    ws = _windows(st, second)["dissociate"]
    d = th.deficits.deficit_drives(st, ws)
    r = lambda e: float(th.deficits.growth_rate(e, lr, 2))  # noqa: E731
    N = 250.0
    kappa = r(d.w_s_a) / r(d.s_a)
    assert kappa * N >= ta0                     # A escapes inside the window
    Q0 = r(d.s_b) * ta0 + r(d.s_b_tilde) * (tb0 - ta0)
    Qw = r(d.w_s_b) * N                         # Σ_AB = 0 in the window: no switch
    K = d.cross * d.plateau_a * np.log(2) / (2 * lr * d.s_a) / (1 + lr * d.s_b_tilde)
    want = N + (Q0 - Qw - K) / r(d.s_b_tilde)
    got = th.deficit_times(st, ws, np.array([N]), depth=2, fusion_layer=2, lr=lr, t_a0=ta0,
                           t_b0=tb0)
    _close(got.t_B, [want], RTOL_LOGIT, "dissociation with A's relaxation")
    return True


# ---------------------------------------------------------------------- early fusion
def derive_early_relaxation():
    """L_f = 1: B's column b gets b' = b + ηε_B Pᵀ, so with the shared product P fixed
    W_B' = W_B + ηq ε_B, q = ‖P‖²; with ε_B = s̃ − σ̃²W_B (A adiabatic)
    W_B(n) = p + (W_B(0) − p)(1 − ηqσ̃²)ⁿ, p = s̃/σ̃², half-way from 0 after
    ln 2/(−ln(1 − ηqσ̃²)) steps. Balanced aligned layers on A's path all have norm U_A^{1/L},
    so q = U_A^{2(L−1)/L}. Checked in check_early_relaxation."""
    eta, eps = sp.symbols("eta epsilon", real=True)
    P = sp.Matrix([sp.symbols("P0:3", real=True)])
    b = sp.Matrix(sp.symbols("b0:3", real=True))
    bn = b + eta * eps * P.T
    assert sp.simplify((P * bn)[0, 0] - (P * b)[0, 0] - eta * eps * (P * P.T)[0, 0]) == 0
    n = sp.Symbol("n", integer=True, nonnegative=True)
    q, st_, v, W0 = sp.symbols("q s_t v W_0", positive=True)
    p = st_ / v
    W = p + (W0 - p) * (1 - eta * q * v) ** n
    assert sp.simplify(W.subs(n, n + 1) - (W + eta * q * (st_ - v * W)).subs(n, n)) == 0
    half = sp.solve(sp.Eq(p * (1 - (1 - eta * q * v) ** n), p / 2), n)[0]
    assert sp.simplify(half - sp.log(2) / (-sp.log(1 - eta * q * v))) == 0
    U, L = sp.symbols("U L", positive=True)
    layer = U ** (1 / L)
    assert sp.simplify(layer ** L - U) == 0
    assert sp.simplify((layer ** (L - 1)) ** 2 - U ** (2 * (L - 1) / L)) == 0
    return True


def check_early_relaxation():
    """theory.deficit_times at L_f = 1 (L = 2 and 4): a deletion that A escapes in restarts B
    at the window's end, t_B = N + T_½; a blur long enough crosses inside at
    t_sw + (t_A' − t_A⁰) + ln(1 − w*/(2p'))/ln(1 − ηq'σ̃'²), t_sw = t_B⁰ − T_½."""
    from dlnfusion import theory as th

    lr = 0.04
    for st in _toy_stats()[:2]:
        mom, second = _moments(st)
        for L, ta0, tb0 in ((2, 120.0, 131.0), (4, 1080.0, 1090.0)):
            wins = _windows(st, second, 0.25, 0.43)
            d = th.deficits.deficit_drives(st, wins["delete"])
            q = d.plateau_a ** (2 * (L - 1) / L)
            T_half = np.log(2) / -np.log1p(-lr * q * d.var_b_tilde)
            N = 3.0 * ta0
            got = th.deficit_times(st, wins["delete"], np.array([N]), depth=L, fusion_layer=1,
                                   lr=lr, t_a0=ta0, t_b0=tb0)
            _close(got.t_B, [N + T_half], RTOL_FLOAT, f"early fusion deletion (L = {L})")
            db = th.deficits.deficit_drives(st, wins["blur"])
            rr = lambda e: float(th.deficits.growth_rate(e, lr, L))  # noqa: E731
            kappa = rr(np.hypot(db.w_s_a, db.w_s_b)) / rr(np.hypot(db.s_a, db.s_b))
            tAd = ta0 / kappa
            aw = lr * db.w_plateau_a ** (2 * (L - 1) / L) * db.w_var_b_tilde
            want = (tb0 - T_half) + (tAd - ta0) + np.log(1 - db.final_b / (2 * db.w_plateau_b)) \
                / np.log1p(-aw)
            got = th.deficit_times(st, wins["blur"], np.array([10 * ta0]), depth=L,
                                   fusion_layer=1, lr=lr, t_a0=ta0, t_b0=tb0)
            _close(got.t_B, [want], RTOL_FLOAT, f"early fusion blur (L = {L})")
            _close(got.t_A, [tAd], RTOL_FLOAT, f"early fusion t_A' (L = {L})")
    return True


# ---------------------------------------------------------------------- intermediate fusion
def derive_intermediate_clock():
    """B's pre-fusion chain under a fixed post-fusion covector P (‖P‖ = p, q = Pᵀ/p):
    L_f = 2 (W_B = P M b): x = b, y = Mᵀq obey ẋ = pεy, ẏ = pεx, the growing mode x + y grows at
    pε and W_B = p xᵀy ∝ e^{2pεt}; L_f = 3 (W_B = P M₃ M₂ v, v fixed): x = M₂v, y = M₃ᵀPᵀ obey
    ẋ = ε‖v‖²y, ẏ = ε p² x, rate ε‖v‖p (theory/network.py derive_linear_first_phase). Either
    way B's clock runs at ε‖P(t)‖ (times a constant). Eq. (45) of Zhang et al.: as u_A → ∞,
    u_B → ∞ for L_f <= 2 (B grows with the shared layers and feeds them) but
    u_B → u0(1 − k)^{1/(2−L_f)} for L_f >= 3 (it does not). Checked in check_intermediate_clock.
    """
    eps, p = sp.symbols("epsilon p", positive=True)
    b = sp.Matrix(sp.symbols("b0:2", real=True))
    M = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    qv = sp.Matrix([[sp.Symbol("c", real=True), sp.Symbol("s", real=True)]])   # unit row
    unit = {sp.Symbol("s", real=True): sp.sqrt(1 - sp.Symbol("c", real=True) ** 2)}
    P = p * qv
    WB = (P * M * b)[0, 0]
    db = eps * sp.Matrix([sp.diff(WB, x) for x in b])                 # ḃ = ε ∂W_B/∂b
    dM = eps * sp.Matrix(2, 2, lambda i, j: sp.diff(WB, M[i, j]))
    x, y = b, M.T * qv.T
    assert sp.simplify((db - p * eps * y).subs(unit)) == sp.zeros(2, 1)
    assert sp.simplify((dM.T * qv.T - p * eps * x).subs(unit)) == sp.zeros(2, 1)
    assert sp.simplify(WB - p * (x.T * y)[0, 0]) == 0
    # eq. (45): u_B^{2−L_f} − u0^{2−L_f} = k(u_A^{2−L_f} − u0^{2−L_f})
    uA, u0, k = sp.symbols("u_A u_0 k", positive=True)
    for Lf in (3, 4):
        uB = (u0 ** (2 - Lf) + k * (uA ** (2 - Lf) - u0 ** (2 - Lf))) ** sp.Rational(1, 2 - Lf)
        lim = sp.limit(uB, uA, sp.oo)
        assert sp.simplify(lim - u0 * (1 - k) ** sp.Rational(1, 2 - Lf)) == 0
    assert sp.limit(u0 * (uA / u0) ** k, uA, sp.oo) == sp.oo               # L_f = 2, eq. (55)
    assert sp.limit(u0 + k * (uA - u0), uA, sp.oo) == sp.oo                # L_f = 1
    return True


def check_intermediate_clock():
    """theory.deficit_times at L = 4, L_f = 3 (deletion, before and after A's transition)
    against the B-clock accounting with rates s_B p₀ and s̃_B p*, p₀ from
    theory.initial_post_norm, which is checked against the numpy product of the post layers."""
    import dlnfusion as dln
    from dlnfusion import theory as th

    spec = dln.NetworkSpec.fusion(4, 3, width=6)
    params = random_params(spec, seed=1, scale=0.3)
    p0 = th.initial_post_norm(spec, params)
    _close(p0, [np.linalg.norm(np.asarray(params.post[0])[0])], RTOL_FLOAT, "initial_post_norm")
    spec2 = dln.NetworkSpec.fusion(4, 1, width=6)
    par2 = random_params(spec2, seed=2, scale=0.3)
    prod = np.asarray(par2.post[2])[0] @ np.asarray(par2.post[1])[0] @ np.asarray(par2.post[0])[0]
    _close(th.initial_post_norm(spec2, par2), [np.linalg.norm(prod)], RTOL_FLOAT,
           "initial_post_norm (three post layers)")
    lr, ta0, tb0 = 0.04, 1370.0, 1940.0
    for st in _toy_stats()[:3]:
        mom, second = _moments(st)
        ws = _windows(st, second)["delete"]
        d = th.deficits.deficit_drives(st, ws)
        pstar = d.plateau_a ** (1 / 4)
        g1, g2 = d.s_b * p0[0], d.s_b_tilde * pstar
        Q0 = g1 * ta0 + g2 * (tb0 - ta0)
        for N in (0.5 * ta0, 2.0 * ta0):
            got = th.deficit_times(st, ws, np.array([N]), depth=4, fusion_layer=3, lr=lr,
                                   t_a0=ta0, t_b0=tb0, post_norm0=p0[0])
            if N < ta0:     # the missed phase-1 drive s_B p₀ N, repaid at s̃_B p*
                want = tb0 + g1 * N / g2
            else:           # B restarts at the window's end with A on its plateau
                want = N + Q0 / g2
            _close(got.t_B, [want], RTOL_FLOAT, f"L_f = 3 deletion, N = {N}")
    return True


def derive_shared_clock():
    """Early fusion at small weights: the stacked first layer gets W¹' = ηW²ᵀΣ_yx, so the
    pathway's growing mode runs at ‖Σ_yx‖ (theory/saxe.py); in a window at ‖Σ_yx'‖, a speed
    κ = ‖Σ_yx'‖/‖Σ_yx‖ (dissociation: exactly ½). A state that runs at speed κ during [0, N)
    is at time N where the normal run was at κN, so A escapes at t_A⁰ + (1 − κ)N if κN < t_A⁰,
    else inside the window at t_A⁰/κ (eq. D2). Checked in check_shared_clock."""
    ya, yb, lam = sp.symbols("s_A s_B lambda", positive=True)
    assert sp.simplify(sp.sqrt((ya / 2) ** 2 + (yb / 2) ** 2) / sp.sqrt(ya ** 2 + yb ** 2)
                       - sp.Rational(1, 2)) == 0
    N, tA, kappa, t = sp.symbols("N t_A kappa t", positive=True)
    clock = kappa * N + (t - N)            # normal-run time of the deficit run at t >= N
    assert sp.simplify(sp.solve(sp.Eq(clock, tA), t)[0] - (tA + (1 - kappa) * N)) == 0
    assert sp.simplify(sp.solve(sp.Eq(kappa * t, tA), t)[0] - tA / kappa) == 0
    return True


def check_shared_clock():
    """theory.deficit_times' t_A at L_f = 1, 2 (shared clock) and L_f = 3, 4 (A's own rate)
    against (D2), deletion and dissociation, N before and after the escape."""
    from dlnfusion import theory as th

    lr, ta0, tb0 = 0.04, 900.0, 1000.0
    for st in _toy_stats()[:2]:
        mom, second = _moments(st)
        for name, ws in _windows(st, second).items():
            d = th.deficits.deficit_drives(st, ws)
            for Lf in (1, 2, 3, 4):
                if Lf <= 2:
                    kappa = np.hypot(d.w_s_a, d.w_s_b) / np.hypot(d.s_a, d.s_b)
                else:
                    kappa = d.w_s_a / d.s_a
                Ns = np.array([0.3 * ta0, 3.0 * ta0])
                got = th.deficit_times(st, ws, Ns, depth=4, fusion_layer=Lf, lr=lr, t_a0=ta0,
                                       t_b0=tb0, post_norm0=0.1)
                want = np.where(kappa * Ns >= ta0, ta0 / kappa, ta0 + (1 - kappa) * Ns)
                if name == "dissociate":      # the knife-edge: t_A is the window's end
                    want = np.where(kappa * Ns >= ta0, np.maximum(Ns, want), want)
                _close(got.t_A, want, RTOL_FLOAT, f"t_A' ({name}, L_f = {Lf})")
    return True


def derive_all():
    return all([derive_deficit_drives(), derive_projection_blur(),
                derive_late_fusion_reparametrization(), derive_time_shift_delay(),
                derive_growth_rate(), derive_window_logistic(), derive_relaxation_integral(),
                derive_early_relaxation(), derive_intermediate_clock(), derive_shared_clock()])


def check_all():
    return all([check_deficit_drives(), check_projection_blur(), check_time_shift_delay(),
                check_growth_rate(), check_window_logistic(), check_relaxation_integral(),
                check_early_relaxation(), check_intermediate_clock(), check_shared_clock()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():
        print("deficits:", derive_all(), "checked against dlnfusion:", check_all())
