"""Fixed points, saddle losses and modality preference (paper eqs. 6, 7, 10, 11, 17, 19, 20, 62).

* Two-layer late fusion: the gradient of every weight of branch m is a product of that
  branch's other weight and the error e_m (eq. 18), so the gradient vanishes iff, for every
  branch, either the branch is zero or its error vanishes. The four combinations are
  M_0, M_A, M_B, M_* (eqs. 19, 20).
* Two-layer early fusion: the only fixed points have total map 0 or Σ_yxΣ^{-1} (eq. 17).
* The loss on M_m is ½(⟨y²⟩ − Σ_yx_mΣ_m^{-1}Σ_yx_mᵀ) (eq. 62 carries no ½).
* Eq. (10) reduces to eq. (11) for uncorrelated scalar modalities with positive teacher
  weights.
* The Hessian at the balanced global minimum has the nonzero spectrum of Σ·JJᵀ with
  JJᵀ = blockdiag n_m(I + v_m v_mᵀ) (gradient descent is stable there iff η λ_max < 2).

Each check_* function evaluates the derived expressions at sample points and compares them
with the dlnfusion function that implements them (fixed_points, saddle_loss,
superficial_preference, preference_regions, reduced_flow, minimum_curvature).
"""
import numpy as np
import sympy as sp

from _checks import close_each as _close, toy_symbols as _toy, toy_loss as _loss

# The library evaluates the same closed forms in float64; a few roundings apart (~1e-15),
# 1e-12 leaves room for the subtractions in the errors e_m and in the losses.
RTOL_FLOAT = 1e-12


def _toy_values(st):
    """Numbers for the symbols of _toy() from scalar-modality statistics."""
    S, s = st.sigma, st.sigma_yx[0]
    return dict(zip(_toy(), (S[0, 0], S[1, 1], S[0, 1], s[0], s[1], st.sigma_yy[0, 0])))


def _sample_stats():
    from dlnfusion import Stats

    return [Stats.scalar_toy(2.0, 1.0, 0.5), Stats.scalar_toy(2.0, 1.0, -0.7),
            Stats.scalar_toy(1.0, 1.5, 0.3, w_a=2.0, w_b=-1.0, noise_var=0.2),
            Stats.scalar_toy(1.2, 0.7, -0.4, w_a=-0.5, w_b=1.5)]


def _late_fusion_manifolds():
    """Total maps (W_A, W_B) of M_A, M_B, M_*: zero errors of the branches that are not zero."""
    sa2, sb2, sab, ya, yb, yy = _toy()
    WA, WB = sp.symbols("W_A W_B", real=True)
    eA_t = ya - WA * sa2 - WB * sab
    eB_t = yb - WA * sab - WB * sb2
    m_a = sp.solve([eA_t.subs(WB, 0)], [WA], dict=True)[0]
    m_b = sp.solve([eB_t.subs(WA, 0)], [WB], dict=True)[0]
    m_star = sp.solve([eA_t, eB_t], [WA, WB], dict=True)[0]
    return {"M_A": (m_a[WA], 0), "M_B": (0, m_b[WB]), "M_*": (m_star[WA], m_star[WB])}


def derive_late_fusion_fixed_points():
    m = _toy()
    sa2, sb2, sab, ya, yb, yy = m
    a1, a2, b1, b2 = sp.symbols("a1 a2 b1 b2", real=True)   # one hidden unit per branch
    L = _loss(a2 * a1, b2 * b1, m)
    grads = [sp.diff(L, v) for v in (a1, a2, b1, b2)]
    eA = ya - a2 * a1 * sa2 - b2 * b1 * sab
    eB = yb - a2 * a1 * sab - b2 * b1 * sb2
    assert sp.simplify(grads[0] + a2 * eA) == 0 and sp.simplify(grads[1] + a1 * eA) == 0
    assert sp.simplify(grads[2] + b2 * eB) == 0 and sp.simplify(grads[3] + b1 * eB) == 0
    # M_A: e_A = 0 with branch B zero; M_B likewise; M_*: both errors zero.
    fps = _late_fusion_manifolds()
    assert sp.simplify(fps["M_A"][0] - ya / sa2) == 0
    assert sp.simplify(fps["M_B"][1] - yb / sb2) == 0
    S = sp.Matrix([[sa2, sab], [sab, sb2]])
    w_star = sp.Matrix([[ya, yb]]) * S.inv()
    assert all(sp.simplify(fps["M_*"][i] - w_star[i]) == 0 for i in range(2))
    return True


def check_late_fusion_fixed_points():
    """fixed_points(stats, 2): the total maps of M_0, M_A, M_B, M_* and their losses against
    _late_fusion_manifolds and the loss _loss."""
    from dlnfusion import theory as th

    m = _toy()
    maps = {k: sp.lambdify(m, list(v)) for k, v in _late_fusion_manifolds().items()}
    maps["M_0"] = lambda *a: [0.0, 0.0]
    WA, WB = sp.symbols("W_A W_B", real=True)
    loss = sp.lambdify((WA, WB) + m, _loss(WA, WB, m))
    for st in _sample_stats():
        v = list(_toy_values(st).values())
        fps = th.fixed_points(st, fusion_layer=2)
        assert set(fps) == {"M_0", "M_A", "M_B", "M_*"}, set(fps)
        for name, f in maps.items():
            want = f(*v)
            # Absolute tolerance for the zero blocks, relative for the others.
            got = fps[name].total_map.ravel()
            assert np.all(np.abs(got - want) <= RTOL_FLOAT * np.maximum(np.abs(want), 1)), name
            # The loss at M_* is zero without noise: errors relative to ⟨y²⟩ there.
            _close(fps[name].loss, loss(*want, *v), RTOL_FLOAT, f"loss on {name}",
                   scale=st.mean_sq_output)
    return True


def derive_early_fusion_fixed_points():
    """ŷ = w2 (w1A x_A + w1B x_B): a zero gradient forces total map 0 or both errors 0."""
    m = _toy()
    sa2, sb2, sab, ya, yb, yy = m
    w2, pa, pb = sp.symbols("w2 p_A p_B", real=True)
    L = _loss(w2 * pa, w2 * pb, m)
    eA = ya - w2 * pa * sa2 - w2 * pb * sab
    eB = yb - w2 * pa * sab - w2 * pb * sb2
    assert sp.simplify(sp.diff(L, pa) + w2 * eA) == 0
    assert sp.simplify(sp.diff(L, pb) + w2 * eB) == 0
    assert sp.simplify(sp.diff(L, w2) + pa * eA + pb * eB) == 0
    # If w2 ≠ 0 both errors vanish (M_*); if w2 = 0 the total map is zero (M_0). A unimodal
    # saddle would need e_A = 0 with W_B = 0, i.e. p_B = 0 and w2 ≠ 0, which forces e_B = 0
    # too: only possible when Σ_yxB = W_A Σ_AB, i.e. when A alone already is the global optimum.
    sol = sp.solve([eA.subs(pb, 0), eB.subs(pb, 0)], [pa, yb], dict=True)[0]
    assert sp.simplify(sol[yb] - ya * sab / sa2) == 0
    return True


def check_early_fusion_fixed_points():
    """fixed_points(stats, 1) has M_0 and M_* only, with M_* the common zero of both errors."""
    from dlnfusion import theory as th

    m = _toy()
    star = sp.lambdify(m, list(_late_fusion_manifolds()["M_*"]))
    for st in _sample_stats():
        fps = th.fixed_points(st, fusion_layer=1)
        assert set(fps) == {"M_0", "M_*"}, set(fps)
        _close(fps["M_*"].total_map.ravel(), star(*_toy_values(st).values()), RTOL_FLOAT, "M_*")
        assert np.all(fps["M_0"].total_map == 0)
    return True


def _saddle_losses():
    m = _toy()
    sa2, sb2, sab, ya, yb, yy = m
    return (_loss(ya / sa2, 0, m), _loss(0, yb / sb2, m),
            sp.Rational(1, 2) * (yy - ya ** 2 / sa2), sp.Rational(1, 2) * (yy - yb ** 2 / sb2))


def derive_saddle_loss():
    """L(M_A) = ½(⟨y²⟩ − s_A²/Σ_A): the paper's eq. (62) without the training loss's ½."""
    la, lb, fa, fb = _saddle_losses()
    assert sp.simplify(la - fa) == 0 and sp.simplify(lb - fb) == 0
    return True


def check_saddle_loss():
    """saddle_loss and the plateau losses of superficial_preference against ½(⟨y²⟩ − s_m²/Σ_m)."""
    from dlnfusion import theory as th

    f = sp.lambdify(_toy(), list(_saddle_losses()[2:]))
    for st in _sample_stats():
        want = f(*_toy_values(st).values())
        _close([th.landscape.saddle_loss(st, "A"), th.landscape.saddle_loss(st, 1)], want, RTOL_FLOAT, "saddle_loss")
        plateau = th.superficial_preference(st)["plateau_loss"]
        _close([plateau["A"], plateau["B"]], want, RTOL_FLOAT, "plateau_loss")
    return True


_EQ11 = sp.symbols("sigma_A sigma_B w_A w_B", positive=True)


def _eq10_ratios():
    """‖s_A‖/‖s_B‖ (eq. 10a: > 1 means A first) and the ratio of the contributions (eq. 10b)."""
    sa, sb, wa, wb = _EQ11
    s_a, s_b = wa * sa ** 2, wb * sb ** 2                     # Σ_yx for Σ = diag(σ_A², σ_B²)
    contrib_a, contrib_b = s_a ** 2 / sa ** 2, s_b ** 2 / sb ** 2
    return s_a / s_b, contrib_a / contrib_b


def derive_eq11():
    """Uncorrelated scalars, y = w_A x_A + w_B x_B, w_A, w_B > 0: eq. (10a) is
    w_A/w_B > σ_B²/σ_A² and eq. (10b) is w_A/w_B < σ_B/σ_A (eq. 11)."""
    sa, sb, wa, wb = _EQ11
    speed, contrib = _eq10_ratios()
    # (10a) ‖s_A‖ > ‖s_B‖  ⟺  w_A/w_B > σ_B²/σ_A²  (both sides positive)
    assert sp.simplify(speed - (wa / wb) / (sb ** 2 / sa ** 2)) == 0
    # (10b) contribution of A < contribution of B  ⟺  (w_A/w_B)² < (σ_B/σ_A)²
    assert sp.simplify(contrib - (wa / wb) ** 2 / (sb / sa) ** 2) == 0
    return True


def check_eq11():
    """preference_regions and superficial_preference against the ratios of eq. (10) on a grid
    of (σ_B/σ_A, w_A/w_B) covering the four regions (points on the boundaries excluded)."""
    from dlnfusion import Stats, theory as th

    f = sp.lambdify(_EQ11, list(_eq10_ratios()))
    seen = set()
    for r in (0.3, 0.8, 1.7, 2.9):
        for q in (0.05, 0.2, 0.5, 0.7, 1.2, 2.3, 4.0, 9.5):
            speed, contrib = f(1.0, r, q, 1.0)
            a_first, a_more = speed > 1, contrib > 1
            want = {(True, True): 1, (False, True): 2, (True, False): 3, (False, False): 4}[
                (bool(a_first), bool(a_more))]
            assert int(th.landscape.preference_regions(r, q)) == want, (r, q)
            pref = th.superficial_preference(Stats.from_teacher(np.diag([1.0, r * r]), [q, 1.0],
                                                                (1, 1)))
            assert pref["first"] == ("A" if a_first else "B")
            assert pref["larger_contribution"] == ("A" if a_more else "B")
            assert pref["superficial"] == (a_first != a_more)
            seen.add(want)
    assert seen == {1, 2, 3, 4}
    return True


_FLOW = sp.symbols("u_A u_B e_A e_B", positive=True)
_SIGNS = sp.symbols("sigma_A sigma_B", real=True)     # signs ±1 of W_A, W_B


def _reduced_flow_velocity(L, Lf):
    """(W_A, W_B) and τ(dW_A/dt, dW_B/dt) of the balanced rank-one ansatz by the chain rule.

    L_f ≥ 2: τu̇_m = σ_m e_m u_m^{L_f−1}u^{L_c}, τu̇ = Σ_n σ_n e_n u_n^{L_f}u^{L_c−1},
    W_m = σ_m u_m^{L_f}u^{L_c}, u² = u_A² + u_B². L_f = 1: one first layer p = (p_A, p_B)
    (signed entries, here p_m = σ_m u_m), τṗ = e u^{L−1}, w = u^{L−1} p, u = ‖p‖.
    """
    ua, ub, ea, eb = _FLOW
    sa, sb = _SIGNS
    Lc = L - Lf
    if Lf == 1:
        pa, pb = sa * ua, sb * ub
        uu = sp.sqrt(pa ** 2 + pb ** 2)
        dp = (ea * uu ** (L - 1), eb * uu ** (L - 1))
        du = (ea * pa + eb * pb) * uu ** (L - 2)
        w = (pa * uu ** (L - 1), pb * uu ** (L - 1))
        dw = tuple(d * uu ** (L - 1) + p * (L - 1) * uu ** (L - 2) * du
                   for d, p in zip(dp, (pa, pb)))
        return w, dw
    u = sp.Symbol("u", positive=True)       # the post-fusion norm, an independent variable
    dua = sa * ea * ua ** (Lf - 1) * u ** Lc
    dub = sb * eb * ub ** (Lf - 1) * u ** Lc
    du = (sa * ea * ua ** Lf + sb * eb * ub ** Lf) * u ** (Lc - 1)
    w, dw = [], []
    for s_m, u_m, du_m in ((sa, ua, dua), (sb, ub, dub)):
        W = s_m * u_m ** Lf * u ** Lc
        w.append(W)
        dw.append(sp.diff(W, u_m) * du_m + sp.diff(W, u) * du)
    on_shell = {u: sp.sqrt(ua ** 2 + ub ** 2)}          # eq. (41) with a balanced start
    return tuple(x.subs(on_shell) for x in w), tuple(x.subs(on_shell) for x in dw)


def derive_reduced_flow():
    """The velocity of the total weights used for phase portraits (theory.landscape.reduced_flow).

    With the balanced rank-one ansatz the norms obey τu̇_m = σ_m e_m u_m^{L_f−1}u^{L_c} and
    τu̇ = Σ_n σ_n e_n u_n^{L_f}u^{L_c−1} (eq. 44 with the errors kept; σ_m the sign of W_m),
    and W_m = σ_m u_m^{L_f} u^{L_c}. The chain rule gives the formula of reduced_flow; for
    L_c = 0 it is L|W_m|^{2−2/L}e_m, and for L_f = 1 (one rank-one first layer, signed u_m)
    it is Arora et al.'s ‖w‖^{2−2/L}[e + (L−1)(e·ŵ)ŵ]."""
    ua, ub, ea, eb = _FLOW
    for L, Lf in ((3, 2), (4, 2), (4, 3), (5, 3)):
        Lc = L - Lf
        u = sp.sqrt(ua ** 2 + ub ** 2)
        (wa, _), (dwa, _) = _reduced_flow_velocity(L, Lf)
        mix = ea * ua ** Lf + eb * ub ** Lf
        formula = Lf * ua ** (2 * Lf - 2) * u ** (2 * Lc) * ea + Lc * ua ** Lf * u ** (2 * Lc - 2) * mix
        assert sp.simplify((dwa - formula).subs({_SIGNS[0]: 1, _SIGNS[1]: 1})) == 0
    # Late fusion: L|W|^{2-2/L} e.
    for L in (2, 3, 4):
        w = ua ** L
        assert sp.simplify(sp.diff(w, ua) * ea * ua ** (L - 1)
                           - L * w ** (2 - sp.Rational(2, L)) * ea) == 0
    # L_f = 1: w = u^{L-1}(u_A, u_B), u² = u_A² + u_B² (signed u_m), against Arora's form.
    pa, pb = sp.symbols("p_A p_B", real=True)
    for L in (2, 3, 4):
        Lc = L - 1
        uu = sp.sqrt(pa ** 2 + pb ** 2)
        dpa, dpb = ea * uu ** Lc, eb * uu ** Lc
        du = (ea * pa + eb * pb) * uu ** (Lc - 1)
        w = [pa * uu ** Lc, pb * uu ** Lc]
        wn = sp.sqrt(w[0] ** 2 + w[1] ** 2)
        proj = (ea * w[0] + eb * w[1]) / wn
        for i, (p, dp, e) in enumerate(((pa, dpa, ea), (pb, dpb, eb))):
            dw = dp * uu ** Lc + p * Lc * uu ** (Lc - 1) * du
            arora = wn ** (2 - sp.Rational(2, L)) * (e + (L - 1) * proj * w[i] / wn)
            vals = {pa: sp.Rational(3, 7), pb: -sp.Rational(2, 5), ea: sp.Rational(1, 3),
                    eb: sp.Rational(5, 4)}
            assert sp.simplify((dw - arora).subs(vals)) == 0
    return True


def check_reduced_flow():
    """reduced_flow(stats, L, L_f, W_A, W_B) against _reduced_flow_velocity, at states of every
    sign pattern, for early (L_f = 1), intermediate and late (L_f = L) fusion."""
    from dlnfusion import theory as th

    ua, ub, ea, eb = _FLOW
    for L, Lf in ((2, 1), (3, 1), (4, 1), (2, 2), (3, 3), (4, 4), (3, 2), (4, 2), (4, 3),
                  (5, 3), (5, 2)):
        w, dw = _reduced_flow_velocity(L, Lf)
        fw = sp.lambdify(_FLOW[:2] + _SIGNS, list(w))
        fdw = sp.lambdify(_FLOW + _SIGNS, list(dw))
        for st in _sample_stats():
            S, s = st.sigma, st.sigma_yx[0]
            for u_a, u_b in ((0.3, 0.7), (1.1, 0.2)):
                for sgn in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    W = fw(u_a, u_b, *sgn)
                    e = (s[0] - W[0] * S[0, 0] - W[1] * S[1, 0],
                         s[1] - W[0] * S[0, 1] - W[1] * S[1, 1])
                    want = fdw(u_a, u_b, *e, *sgn)
                    tau = 0.5
                    got = th.landscape.reduced_flow(st, L, Lf, W[0], W[1], lr=1 / tau)
                    # Relative to the size of the velocity (a component may nearly cancel);
                    # the library recovers u_A, u_B from W through powers 1/L_f, 1/L: a few
                    # more roundings (measured ≤ 2e-15).
                    _close(np.multiply(got, tau), want, RTOL_FLOAT,
                           f"reduced_flow (L = {L}, L_f = {Lf}, signs {sgn})",
                           scale=max(abs(want[0]), abs(want[1])))
    return True


def derive_minimum_curvature(h: int = 3, d: int = 2):
    """The Hessian at the balanced global minimum (theory.minimum_curvature).

    One two-layer branch W = W²W¹ (1×h times h×d) at W¹ = √n e vᵀ, W² = √n eᵀ (‖v‖ = 1). Its
    Jacobian J = ∂W/∂θ satisfies J Jᵀ = n (I + v vᵀ): the first layer contributes n I, the
    second n v vᵀ. At a minimum the residual vanishes, so the Hessian of ½(W − W*)Σ(W − W*)ᵀ
    is JᵀΣJ, whose nonzero eigenvalues are those of Σ J Jᵀ (J Jᵀ block-diagonal over
    branches). Both steps are checked symbolically on a branch, the second also numerically
    on two branches against the Hessian computed by sympy.
    """
    n = sp.Symbol("n", positive=True)
    v = sp.Matrix(sp.symbols(f"v0:{d}", real=True))
    W1 = sp.Matrix(h, d, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    W2 = sp.Matrix(1, h, lambda i, j: sp.Symbol(f"b{j}", real=True))
    theta = list(W1) + list(W2)
    W = W2 * W1
    J = sp.Matrix([[sp.diff(W[0, j], t) for t in theta] for j in range(d)])
    e = sp.Matrix([1] + [0] * (h - 1))
    at = {**{W1[i, j]: sp.sqrt(n) * e[i] * v[j] for i in range(h) for j in range(d)},
          **{W2[0, i]: sp.sqrt(n) * e[i] for i in range(h)}}
    JJ = (J * J.T).subs(at)
    unit = {v[-1]: sp.sqrt(1 - sum(x ** 2 for x in v[:-1]))}
    assert sp.simplify((JJ - n * (sp.eye(d) + v * v.T)).subs(unit)) == sp.zeros(d, d)
    # Two scalar branches, numbers: Hessian of the loss at the minimum vs eig(Σ J Jᵀ).
    a1, a2, b1, b2 = sp.symbols("a1 a2 b1 b2", real=True)
    S = sp.Matrix([[2, sp.Rational(3, 5)], [sp.Rational(3, 5), 1]])
    Wstar = sp.Matrix([[sp.Rational(3, 2), -sp.Rational(1, 2)]])
    Wt = sp.Matrix([[b1 * a1, b2 * a2]])
    L = ((Wt - Wstar) * S * (Wt - Wstar).T)[0, 0] / 2
    point = {a1: sp.sqrt(sp.Rational(3, 2)), b1: sp.sqrt(sp.Rational(3, 2)),
             a2: sp.sqrt(sp.Rational(1, 2)), b2: -sp.sqrt(sp.Rational(1, 2))}
    H = sp.hessian(L, (a1, b1, a2, b2)).subs(point)
    K = sp.diag(2 * sp.Rational(3, 2), 2 * sp.Rational(1, 2))
    got = sorted(float(x) for x in H.eigenvals(multiple=True) if abs(float(x)) > 1e-12)
    want = sorted(float(x) for x in (S * K).eigenvals(multiple=True))
    assert np.allclose(got, want, rtol=1e-12)
    return True


def check_minimum_curvature():
    """minimum_curvature against the Hessian of an actual balanced network at W*, computed by
    sympy (scalar modalities) for several statistics; float64 evaluation of the same
    eigenvalues (RTOL_FLOAT)."""
    from dlnfusion import theory as th

    for st in _sample_stats():
        W = st.global_solution()[0]
        a = sp.symbols("a1 a2 b1 b2", real=True)
        Wt = sp.Matrix([[a[2] * a[0], a[3] * a[1]]])
        S = sp.Matrix(st.sigma.tolist())
        L = ((Wt - sp.Matrix([W.tolist()])) * S * (Wt - sp.Matrix([W.tolist()])).T)[0, 0] / 2
        point = {a[0]: np.sqrt(abs(W[0])), a[1]: np.sqrt(abs(W[1])),
                 a[2]: np.sign(W[0]) * np.sqrt(abs(W[0])), a[3]: np.sign(W[1]) * np.sqrt(abs(W[1]))}
        H = np.array(sp.hessian(L, a).subs(point).evalf(), dtype=float)
        ev = np.linalg.eigvalsh(H)
        nonzero = ev[ev > 1e-12 * ev[-1]]
        c = th.minimum_curvature(st)
        _close([c.lambda_max, c.lambda_min], [nonzero[-1], nonzero[0]], RTOL_FLOAT,
               "minimum_curvature")
    return True


def derive_all():
    return all([derive_late_fusion_fixed_points(), derive_early_fusion_fixed_points(),
                derive_saddle_loss(), derive_eq11(), derive_reduced_flow(),
                derive_minimum_curvature()])


def check_all():
    return all([check_late_fusion_fixed_points(), check_early_fusion_fixed_points(),
                check_saddle_loss(), check_eq11(), check_reduced_flow(),
                check_minimum_curvature()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("landscape:", derive_all(), "checked against dlnfusion:", check_all())
