"""Fixed points, saddle losses and modality preference (paper eqs. 6, 7, 10, 11, 17, 19, 20, 62).

* Two-layer late fusion: the gradient of every weight of branch m is a product of that
  branch's other weight and the error e_m (eq. 18), so the gradient vanishes iff, for every
  branch, either the branch is zero or its error vanishes. The four combinations are
  M_0, M_A, M_B, M_* (eqs. 19, 20).
* Two-layer early fusion: the only fixed points have total map 0 or Σ_yxΣ^{-1} (eq. 17).
* The loss on M_m is ½(⟨y²⟩ − Σ_yx_mΣ_m^{-1}Σ_yx_mᵀ) (eq. 62 carries no ½).
* Eq. (10) reduces to eq. (11) for uncorrelated scalar modalities with positive teacher
  weights.
"""
import sympy as sp


def _toy():
    sa2, sb2, sab, ya, yb, yy = sp.symbols("Sigma_A Sigma_B Sigma_AB s_A s_B yy", real=True)
    return sa2, sb2, sab, ya, yb, yy


def _loss(WA, WB, m):
    sa2, sb2, sab, ya, yb, yy = m
    return sp.Rational(1, 2) * (yy - 2 * WA * ya - 2 * WB * yb + WA ** 2 * sa2
                                + 2 * WA * WB * sab + WB ** 2 * sb2)


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
    WA, WB = sp.symbols("W_A W_B", real=True)
    eA_t = ya - WA * sa2 - WB * sab
    eB_t = yb - WA * sab - WB * sb2
    # M_A: e_A = 0 with branch B zero; M_*: both errors zero.
    m_a = sp.solve([eA_t.subs(WB, 0)], [WA], dict=True)[0]
    assert sp.simplify(m_a[WA] - ya / sa2) == 0
    m_star = sp.solve([eA_t, eB_t], [WA, WB], dict=True)[0]
    S = sp.Matrix([[sa2, sab], [sab, sb2]])
    w_star = sp.Matrix([[ya, yb]]) * S.inv()
    assert sp.simplify(m_star[WA] - w_star[0]) == 0 and sp.simplify(m_star[WB] - w_star[1]) == 0
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


def derive_saddle_loss():
    """L(M_A) = ½(⟨y²⟩ − s_A²/Σ_A): the paper's eq. (62) without the training loss's ½."""
    m = _toy()
    sa2, sb2, sab, ya, yb, yy = m
    L = _loss(ya / sa2, 0, m)
    assert sp.simplify(L - sp.Rational(1, 2) * (yy - ya ** 2 / sa2)) == 0
    return True


def derive_eq11():
    """Uncorrelated scalars, y = w_A x_A + w_B x_B, w_A, w_B > 0: eq. (10a) is
    w_A/w_B > σ_B²/σ_A² and eq. (10b) is w_A/w_B < σ_B/σ_A (eq. 11)."""
    sa, sb, wa, wb = sp.symbols("sigma_A sigma_B w_A w_B", positive=True)
    s_a, s_b = wa * sa ** 2, wb * sb ** 2                     # Σ_yx for Σ = diag(σ_A², σ_B²)
    contrib_a, contrib_b = s_a ** 2 / sa ** 2, s_b ** 2 / sb ** 2
    # (10a) ‖s_A‖ > ‖s_B‖  ⟺  w_A/w_B > σ_B²/σ_A²  (both sides positive)
    assert sp.simplify(s_a / s_b - (wa / wb) / (sb ** 2 / sa ** 2)) == 0
    # (10b) contribution of A < contribution of B  ⟺  (w_A/w_B)² < (σ_B/σ_A)²
    assert sp.simplify(contrib_a / contrib_b - (wa / wb) ** 2 / (sb / sa) ** 2) == 0
    return True


def derive_reduced_flow():
    """The velocity of the total weights used for phase portraits (theory.reduced_flow).

    With the balanced rank-one ansatz the norms obey τu̇_m = σ_m e_m u_m^{L_f−1}u^{L_c} and
    τu̇ = Σ_n σ_n e_n u_n^{L_f}u^{L_c−1} (eq. 44 with the errors kept; σ_m the sign of W_m),
    and W_m = σ_m u_m^{L_f} u^{L_c}. The chain rule gives the formula of reduced_flow; for
    L_c = 0 it is L|W_m|^{2−2/L}e_m, and for L_f = 1 (one rank-one first layer, signed u_m)
    it is Arora et al.'s ‖w‖^{2−2/L}[e + (L−1)(e·ŵ)ŵ]."""
    ua, ub, u, ea, eb = sp.symbols("u_A u_B u e_A e_B", positive=True)
    for L, Lf in ((3, 2), (4, 2), (4, 3), (5, 3)):
        Lc = L - Lf
        dua = ea * ua ** (Lf - 1) * u ** Lc
        dub = eb * ub ** (Lf - 1) * u ** Lc
        du = (ea * ua ** Lf + eb * ub ** Lf) * u ** (Lc - 1)
        wa = ua ** Lf * u ** Lc
        dwa = sp.diff(wa, ua) * dua + sp.diff(wa, u) * du
        mix = ea * ua ** Lf + eb * ub ** Lf
        formula = Lf * ua ** (2 * Lf - 2) * u ** (2 * Lc) * ea + Lc * ua ** Lf * u ** (2 * Lc - 2) * mix
        assert sp.simplify(dwa - formula) == 0
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


def derive_all():
    return all([derive_late_fusion_fixed_points(), derive_early_fusion_fixed_points(),
                derive_saddle_loss(), derive_eq11(), derive_reduced_flow()])


if __name__ == "__main__":
    print("landscape:", derive_all())
