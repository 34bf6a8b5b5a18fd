"""The learning sequence of a two-layer late-fusion network with M modalities.

Setting: y and M modalities x_1..x_M (scalar in the finite-initialization bookkeeping), a
two-layer late-fusion network ŷ = Σ_m w_m x_m with w_m = b_mᵀ a_m (first-layer column a_m,
readout b_m, both in R^h), loss ½⟨(y − ŷ)²⟩ written in moments.

Derived here:

1. the drive of branch m is e_m = s_m − Σ_m' Σ_mm' w_m' (the gradient of the loss), and the
   gradient-descent step a ← a + ηe b, b ← b + ηe a multiplies v± = a ± b by exactly (1 ± ηe);
   w = (‖v₊‖² − ‖v₋‖²)/4 — the two mode amplitudes of every scalar branch;
2. partial solutions: with the set S fitted, j's block of the solution on S ∪ {j} is
   e_j(S)/Σ̃_j(S) (Σ̃ the Schur complement), the optimum of S given w_j is linear in w_j, so the
   drive of every other modality moves linearly with j's progress x = w_j/P_j during j's
   transition, from e(S) at x = 0 to e(S ∪ {j}) at x = 1;
3. the loss on a plateau is ½(⟨y²⟩ − W_S s_Sᵀ);
4. the greedy leading-order rule reduces to eq. (9), corrected, for M = 2 (both signs);
5. in gradient flow, the growth accumulated along a logistic transition equals the sharp
   switch at its half time, for a drive linear in the progress; dlnfusion's carrying back of
   the amplitudes to the crossing time uses exactly that.

Each check_* function compares the library with these results at sample statistics.
"""
import numpy as np
import sympy as sp

from _checks import close_each as _close, random_params


# Where the library evaluates the same closed form as the derivation, the two differ by
# float64 rounding of a few operations (~1e-15); 1e-12 leaves room for the solves.
RTOL_FLOAT = 1e-12
# Gradient flow: the library samples each logistic transition at dt = 0.05 steps with the
# midpoint rule (error O(dt²g²) relative on a smooth integrand, g = η|e| ≤ 0.2: ~1e-4 of the
# short transition, far less of t_B) and drops terms of order x0 ~ 1e-16 at entry std 1e-9;
# measured: ≤ 6.4e-12 relative. 1e-9 bounds it.
RTOL_GF = 1e-9
# Gradient descent against theory.predict_times (M = 2): the two bookkeepings differ by the
# logistic map's O(x) departure from pure growth while B is still small (its x when A has
# saturated, ~1e-8 on these points); measured: ≤ 5.9e-9 relative. 1e-7 bounds it.
RTOL_GD = 1e-7


def derive_branch_modes():
    """Drive from the loss; exact (1 ± ηe) modes of a scalar branch; w = (‖v₊‖² − ‖v₋‖²)/4."""
    M = 3
    w = sp.symbols("w1:4", real=True)
    s = sp.symbols("s1:4", real=True)
    yy = sp.Symbol("yy", positive=True)
    Sig = sp.Matrix(M, M, lambda i, j: sp.Symbol(f"S{min(i, j) + 1}{max(i, j) + 1}", real=True))
    W = sp.Matrix([w])
    loss = sp.Rational(1, 2) * (yy - 2 * (W * sp.Matrix(s))[0] + (W * Sig * W.T)[0])
    for m in range(M):
        e_m = s[m] - sum(Sig[m, k] * w[k] for k in range(M))
        assert sp.simplify(-sp.diff(loss, w[m]) - e_m) == 0
    # one branch: w = bᵀa, dℓ/da = −e b, dℓ/db = −e a (chain rule through w)
    h = 3
    a = sp.Matrix(sp.symbols("a1:4", real=True))
    b = sp.Matrix(sp.symbols("b1:4", real=True))
    eta, e = sp.symbols("eta e", real=True)
    a_new, b_new = a + eta * e * b, b + eta * e * a
    assert sp.simplify((a_new + b_new) - (1 + eta * e) * (a + b)) == sp.zeros(h, 1)
    assert sp.simplify((a_new - b_new) - (1 - eta * e) * (a - b)) == sp.zeros(h, 1)
    vp, vm = a + b, a - b
    assert sp.expand((b.T * a)[0] - ((vp.T * vp)[0] - (vm.T * vm)[0]) / 4) == 0
    return True


def _three():
    s = sp.symbols("s1:4", real=True)
    S = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"S{min(i, j) + 1}{max(i, j) + 1}", real=True))
    return s, S


def derive_partial_solutions():
    """j's block on S ∪ {j} is e_j(S)/Σ̃_j(S); the optimum of S given w_j is linear in w_j and
    the other drives interpolate linearly between e(S) and e(S ∪ {j})."""
    s, S = _three()
    sS = sp.Matrix([[s[0], s[1]]])
    SS = S[:2, :2]
    WS = sS * SS.inv()                                   # plateau of S = {1, 2}
    e3 = s[2] - (WS * S[:2, 2])[0]
    schur = S[2, 2] - (S[2, :2] * SS.inv() * S[:2, 2])[0]
    full = sp.Matrix([s]) * S.inv()                       # plateau of {1, 2, 3}
    assert sp.simplify(full[2] - e3 / schur) == 0
    # S's optimum given w_3: minimize over (w1, w2) with w3 fixed
    w3 = sp.Symbol("w3", real=True)
    cond = (sS - w3 * S[2, :2]) * SS.inv()
    assert all(sp.simplify(sp.diff(c, w3, 2)) == 0 for c in cond)    # linear in w3
    assert all(sp.simplify(c.subs(w3, 0) - d) == 0 for c, d in zip(cond, WS))
    assert all(sp.simplify(c.subs(w3, full[2]) - d) == 0 for c, d in zip(cond, full[:2]))
    return True


def derive_plateau_loss():
    """½⟨(y − W_S x_S)²⟩ at W_S = s_S Σ_SS⁻¹ is ½(⟨y²⟩ − W_S s_Sᵀ). Its library counterpart
    is checked by check_partial_solutions."""
    s, S = _three()
    yy = sp.Symbol("yy", positive=True)
    sS, SS = sp.Matrix([[s[0], s[1]]]), S[:2, :2]
    WS = sS * SS.inv()
    loss = sp.Rational(1, 2) * (yy - 2 * (WS * sS.T)[0] + (WS * SS * WS.T)[0])
    assert sp.simplify(loss - sp.Rational(1, 2) * (yy - (WS * sS.T)[0])) == 0
    return True


def derive_two_modality_limit():
    """The greedy rule of dlnfusion.theory.learning_sequence (progress p±, rates ±e) gives
    θ_A = 1/|s_A| and θ_B − θ_A = (1 − χk)/|s̃_B|, eq. (9) corrected, for either sign."""
    sa, sb, sbt = sp.symbols("s_A s_B stilde_B", positive=True)
    theta_a = 1 / sa
    # drive on B in phase 1 is ±s_B; the mode that must grow in phase 2 follows the sign of s̃_B
    for sign_b, sign_bt, chi in ((1, 1, 1), (-1, -1, 1), (-1, 1, -1), (1, -1, -1)):
        p = {1: sign_b * sb * theta_a, -1: -sign_b * sb * theta_a}      # p₊, p₋ at θ_A
        theta_b = theta_a + (1 - p[sign_bt]) / sbt
        target = theta_a * (1 + (sa - chi * sb) / sbt)
        assert sp.simplify(theta_b - target) == 0
    return True


def derive_sharp_switch():
    """∫₀^∞ [e(x(t)) − e_sharp(t)] dt = 0 for x the logistic 1/(1 + e^{−2g(t − t½)}) and e
    linear in x (e0 before t½, e1 after): the growth of the other modalities accumulated
    along a gradient-flow transition is that of the sharp switch at the half time. Its library
    counterpart (learning_sequence, method="gf") is checked by check_two_modality_limit."""
    t, g, th = sp.symbols("t g t_h", positive=True)
    e0, e1 = sp.symbols("e0 e1", real=True)
    x = 1 / (1 + sp.exp(-2 * g * (t - th)))
    # integrate the difference on (−∞, ∞) around t½ (the O(e^{−2g t½}) start is dropped)
    u = sp.Symbol("u", real=True)
    xu = 1 / (1 + sp.exp(-2 * g * u))
    left = sp.integrate((e1 - e0) * xu, (u, -sp.oo, 0))
    right = sp.integrate((e1 - e0) * (xu - 1), (u, 0, sp.oo))
    assert sp.simplify(left + right) == 0
    assert x.subs(t, th) == sp.Rational(1, 2)
    return True


def _sample_stats():
    from dlnfusion import Stats

    return [Stats.random(dim=3, dims=(1, 1, 1), seed=0),
            Stats.random(dim=4, dims=(1, 1, 1, 1), seed=4),
            Stats.random(dim=5, dims=(1,) * 5, seed=3)]


def check_partial_solutions():
    """partial_solution, residual_drive, plateau_loss against the derived forms."""
    from dlnfusion import theory as th

    for st in _sample_stats():
        M = st.n_modalities
        for S in ([0], [1, 2], list(range(M - 1))):
            W = th.sequence.partial_solution(st, S)
            c = np.asarray(S)
            ref = np.linalg.solve(st.sigma[np.ix_(c, c)], st.sigma_yx[0, c])
            _close(W[0, c], ref, RTOL_FLOAT, "partial solution")
            assert np.all(W[0, [j for j in range(M) if j not in S]] == 0)
            yy = float(st.sigma_yy[0, 0])
            _close(th.sequence.plateau_loss(st, S), 0.5 * (yy - ref @ st.sigma_yx[0, c]), RTOL_FLOAT,
                   "plateau loss")
            for j in range(M):
                if j in S:
                    continue
                e = float(th.sequence.residual_drive(st, S, j)[0, 0])
                schur = st.sigma[j, j] - st.sigma[j, c] @ np.linalg.solve(
                    st.sigma[np.ix_(c, c)], st.sigma[c, j])
                nxt = th.sequence.partial_solution(st, S + [j])[0, j]
                _close(nxt, e / schur, RTOL_FLOAT, "next block = e/Schur")
    return True


def check_branch_modes():
    """sequence_init: (‖a + b‖²/4, ‖a − b‖²/4) of each branch, their difference the map."""
    from dlnfusion import NetworkSpec, theory as th, total_maps

    spec = NetworkSpec.fusion(2, 2, width=7, input_dims=(1, 1, 1))
    p = random_params(spec, 3, 0.3)
    amp = th.sequence.sequence_init(spec, p)[0]
    maps = total_maps(spec, p)
    for m, (W1, W2) in enumerate(p.branches):
        a, b = np.asarray(W1)[0, :, 0], np.asarray(W2)[0, 0, :]
        _close(amp[m], [np.sum((a + b) ** 2) / 4, np.sum((a - b) ** 2) / 4], RTOL_FLOAT, "modes")
        _close(amp[m, 0] - amp[m, 1], np.asarray(maps[m])[0, 0, 0], 1e-10, "map = w+ − w−")
    return True


def check_two_modality_limit():
    """M = 2: the leading order is eq. (9) corrected; gradient flow and gradient descent agree
    with theory.predict_times."""
    from dlnfusion import Stats, theory as th

    w0 = th.saxe.typical_effective_init(1e-9, 100)
    for rho in (0.5, -0.7, 0.0):
        st = Stats.scalar_toy(2.0, 1.0, rho)
        seq = th.learning_sequence(st)
        lo = seq.times_leading_order
        _close(lo[1] / lo[0], th.time_ratio_gradient_flow(st).value, RTOL_FLOAT,
               "leading-order ratio")
        for method, tol in (("gf", RTOL_GF), ("gd", RTOL_GD)):
            seq = th.learning_sequence(st, method=method)
            ref = th.predict_times(st, 0.04, [w0, w0], method=method)
            _close(seq.times, [ref.t_A, ref.t_B], tol, f"times ({method}, rho={rho})")
    return True


# ----------------------------------------------------------------- deep fusion networks
# Balanced, rank-one, aligned weights (ansatz 43): branch m's pre-fusion matrices have norm
# u_m, the post-fusion ones u, and τ du_m/dt = ‖e_m‖ u_m^{L_f−1} u^{L−L_f}, u² = Σ_m u_m² (the
# M-modality eq. 44 and 41).

def derive_deep_progress():
    """z = u^{2−L_f} (ln u at L_f = 2) falls at (L_f − 2)‖e‖u^{L−L_f}/τ; hence in the first
    phase u_j^{2−L_f} − u0^{2−L_f} = k_j (u_1^{2−L_f} − u0^{2−L_f}) for every other branch,
    k_j = ‖s_j‖/‖s_1‖ (the shared factor u^{L−L_f} cancels), so when branch 1 has escaped
    (u_1 ≫ u0) branch j has progress 1 − z_j/z0 = k_j: the two-layer leading-order progress.
    Its library counterpart is checked by check_deep_two_modality_limit."""
    uj, u1, U, tau, L, Lf, sj, s1, u0 = sp.symbols("u_j u_1 U tau L L_f s_j s_1 u_0",
                                                    positive=True)
    du_j = sj * uj ** (Lf - 1) * U ** (L - Lf) / tau
    du_1 = s1 * u1 ** (Lf - 1) * U ** (L - Lf) / tau
    dz_j = sp.diff(uj ** (2 - Lf), uj) * du_j
    assert sp.simplify(dz_j + (Lf - 2) * sj * U ** (L - Lf) / tau) == 0
    dz_1 = sp.diff(u1 ** (2 - Lf), u1) * du_1
    assert sp.simplify(dz_j / dz_1 - sj / s1) == 0        # the branch relation
    # L_f = 2: d ln u/dt = ‖e‖u^{L−2}/τ, the same ratio
    assert sp.simplify(sp.diff(sp.log(uj), uj) * du_j.subs(Lf, 2)
                       / (sp.diff(sp.log(u1), u1) * du_1.subs(Lf, 2)) - sj / s1) == 0
    # progress at the escape: z_j/z0 = 1 − k_j(1 − (u_1/u0)^{2−L_f}) → 1 − k_j as u_1/u0 → ∞
    x = sp.Symbol("x", positive=True)
    k = sp.Symbol("k", positive=True)
    ratio = 1 + k * (x ** (2 - Lf) - 1)
    assert sp.limit(ratio.subs(Lf, 3), x, sp.oo) == 1 - k
    assert sp.limit(ratio.subs(Lf, 5), x, sp.oo) == 1 - k
    return True


def derive_post_norm():
    """On a plateau the learned blocks have ‖W_m‖ = u_m^{L_f} u^{L−L_f} and the balance
    u² = Σ u_m² gives u^{2L/L_f} = Σ_m ‖W_m‖^{2/L_f} (one learned modality: u = ‖U_A‖^{1/L},
    the factor ‖U_A‖^{1−L_f/L} of eq. 12)."""
    L, Lf, u = sp.symbols("L L_f u", positive=True)
    W = sp.symbols("W1:4", positive=True)
    um = [(w / u ** (L - Lf)) ** (1 / Lf) for w in W]
    lhs = sum(v ** 2 for v in um)
    # u² = Σ u_m²  ⇔  u^{2L/L_f} = Σ W_m^{2/L_f}: multiply by u^{2(L−L_f)/L_f}
    assert sp.simplify(sp.powsimp(lhs * u ** (2 * (L - Lf) / Lf), force=True)
                       - sum(w ** (2 / Lf) for w in W)) == 0
    one = sp.solve(sp.Eq(u ** (2 * L / Lf), W[0] ** (2 / Lf)), u)
    assert any(sp.simplify(r - W[0] ** (1 / L)) == 0 for r in one)
    assert sp.simplify((W[0] ** (1 / L)) ** (L - Lf) - W[0] ** (1 - Lf / L)) == 0
    return True


def derive_stage_one_integral():
    """t_1 = τ ∫_{u0}^∞ du_1/(‖s_1‖ u_1^{L_f−1} u^{L−L_f}) with u² = u_1² + Σ_j u_j(u_1)² is,
    after y = u0/u_1, τ u0^{2−L} I_M/‖s_1‖ with the integrand of
    dlnfusion.theory.sequence.stage_one_integral (verified at sample points in 30 digits: a symbolic
    simplification of the nested powers is not reliable)."""
    import mpmath as mp

    mp.mp.dps = 30
    for L, Lf, ks in ((4, 3, (0.3, 0.7)), (5, 3, (0.5, 0.2, 0.9)), (6, 4, (0.4,)),
                      (4, 2, (0.3, 0.6)), (5, 2, (0.8,))):
        u0 = mp.mpf("0.013")
        ks = [mp.mpf(str(k)) for k in ks]     # exact in 30 digits (1 − k included)
        for y in (mp.mpf("0.1"), mp.mpf("0.5"), mp.mpf("0.93")):
            u1 = u0 / y
            if Lf == 2:
                uj = [u0 * (u1 / u0) ** k for k in ks]
            else:
                q = 2 - Lf
                uj = [(u0 ** q + k * (u1 ** q - u0 ** q)) ** (1 / mp.mpf(q)) for k in ks]
            u = mp.sqrt(u1 ** 2 + sum(v ** 2 for v in uj))
            direct = 1 / (u1 ** (Lf - 1) * u ** (L - Lf)) * (u0 / y ** 2)   # du_1 = u0/y² dy
            if Lf == 2:
                r2 = sum(y ** (2 * (1 - k)) for k in ks)
            else:
                r2 = sum(y ** 2 * (k * y ** (Lf - 2) + 1 - k) ** (-mp.mpf(2) / (Lf - 2))
                         for k in ks)
            lib = u0 ** (2 - L) * y ** (L - 3) * (1 + r2) ** (mp.mpf(Lf - L) / 2)
            assert abs(direct / lib - 1) < mp.mpf("1e-25")
    return True


def check_stage_one_integral():
    """stage_one_integral: M = 2 is fusion_integral (eq. 13 / 58, a separate implementation);
    M = 3 against a 30-digit quadrature of the first-phase time in u_1 (its definition)."""
    import mpmath as mp

    from dlnfusion import theory as th

    mp.mp.dps = 30
    for L, Lf, k in ((4, 3, 0.4), (5, 3, 0.9), (4, 2, 0.3), (6, 4, 0.2), (5, 5, 0.6)):
        _close(th.sequence.stage_one_integral(L, Lf, [k]), th.fusion_integral(L, Lf, k), 1e-9,
               f"I_2({L}, {Lf})")
    for L, Lf, ks in ((4, 3, (0.3, 0.7)), (4, 2, (0.5, 0.8))):
        u0 = mp.mpf(1)   # the integral in y is u0-free; in u_1 with u0 = 1 it is I_M itself

        def f(u1):
            if Lf == 2:
                uj = [u1 ** k for k in ks]
            else:
                uj = [(1 + k * (u1 ** (2 - Lf) - 1)) ** (1 / mp.mpf(2 - Lf)) for k in ks]
            u = mp.sqrt(u1 ** 2 + sum(v ** 2 for v in uj))
            return 1 / (u1 ** (Lf - 1) * u ** (L - Lf))

        ref = float(mp.quad(f, [u0, 2, 10, 100, mp.inf]))
        # quad at epsrel 1e-12 against 30 digits
        _close(th.sequence.stage_one_integral(L, Lf, ks), ref, 1e-9, f"I_3({L}, {Lf})")
    return True


def check_deep_two_modality_limit():
    """M = 2: learning_sequence's deep leading order equals theory.deep_times (eqs. 48, 54,
    56a,b, corrected) for both signs of χ, late, intermediate and L_f = 2 fusion; the order is
    the two-layer one."""
    from dlnfusion import Stats, theory as th

    for rho in (0.3, -0.7, 0.0):
        st = Stats.scalar_toy(2.0, 1.0, rho)
        for L, Lf in ((3, 2), (4, 2), (4, 3), (4, 4), (5, 3)):
            seq = th.learning_sequence(st, L, Lf, scale=0.05, lr=1.0)
            ref = th.deep_times(st, L, Lf, 0.05, lr=1.0)
            _close(seq.times_leading_order, [ref.t_A, ref.t_B], 1e-9,
                   f"deep times L={L}, L_f={Lf}, rho={rho}")
            assert seq.order_leading_order == th.learning_sequence(st).order_leading_order
    return True


def check_post_norm():
    """u(S) of one learned modality gives deep_times' ‖U_A‖^{1−L_f/L} (through
    check_deep_two_modality_limit); for two learned modalities the balance holds on the
    plateau's blocks."""
    from dlnfusion import Stats, theory as th
    from dlnfusion.theory.sequence import _post_norm

    st = Stats.random(dim=3, dims=(1, 1, 1), seed=0)
    for L, Lf in ((4, 3), (5, 2)):
        u = _post_norm(st, [0, 2], L, Lf)
        W = th.sequence.partial_solution(st, [0, 2])[0]
        um = [(abs(W[m]) / u ** (L - Lf)) ** (1 / Lf) for m in (0, 2)]
        _close(u ** 2, sum(v ** 2 for v in um), RTOL_FLOAT, "balance u² = Σ u_m²")
    return True
