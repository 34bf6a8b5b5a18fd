"""Times of the two transitions of a two-layer late-fusion network (paper eqs. 8, 9, 27-33).

Setting (theory/modes.py): each branch m has a growing mode whose amplitude is multiplied by
e^{ε t/τ} (gradient flow) or (1 + ηε) per step (gradient descent) when the error correlation
along its direction is ε, and a mode along the opposite direction that shrinks by the inverse
factor. The total map of a branch is ½(‖α‖² − ‖β‖²) along its direction. Write ℓ = ln(1/u0)
for the scale of the initial weights (every mode starts at amplitude ∝ u0).

Phase 1 (0 < t < t_A): the errors are Σ_yx_m, so A's mode grows at ‖s_A‖ and reaches O(1) at
t_A = τℓ/‖s_A‖ (eq. 8a). B's mode along s_B grows at ‖s_B‖ to u0^{1−k}, k = ‖s_B‖/‖s_A‖, and
the mode along −s_B shrinks to u0^{1+k} (eq. 30).

Phase 2 (t_A < t < t_B): A sits on its plateau U_A = s_AΣ_A^{-1}, B is driven by
s̃_B = s_B − U_AΣ_AB (eq. 31). The amplitude along s̃_B at t_A is (1 + cos θ)/2 · u0^{1−k} +
(1 − cos θ)/2 · u0^{1+k} (+ O(u0) from the untouched directions), θ the angle between s_B and
s̃_B. For cos θ > −1 the first term wins as u0 → 0; for cos θ = −1 only the second remains.
Hence t_B − t_A = τℓ(1 − χk)/‖s̃_B‖ with χ = +1, or χ = −1 for anti-parallel s_B and s̃_B.

This module checks the algebra, the reduction to Appendix J for the scalar toy (for every ρ,
although eq. 9 as printed fails when Σ_yxB < 0), the mis-attribution ρσ_B/σ_A, the exactness
of the sharp switch at t_A in gradient flow, the adiabatic second phase, and the
finite-learning-rate sensitivities used by dlnfusion.theory.log_init_sensitivity.
"""
import sympy as sp


def derive_leading_order_ratio():
    """t_B/t_A = 1 + (‖s_A‖ − χ‖s_B‖)/‖s̃_B‖ from the two-phase growth."""
    tau, ell, na, nb, nbt = sp.symbols("tau ell n_A n_B n_Bt", positive=True)
    t = sp.Symbol("t", positive=True)
    for chi in (1, -1):
        t_a = tau * ell / na                                  # ln α_A(t_A) = ln(1/u0) + ... = 0
        ln_amp_b = -ell + chi * nb * t_a / tau                # ln amplitude along s̃_B at t_A
        t_b = sp.solve(sp.Eq(ln_amp_b + nbt * (t - t_a) / tau, 0), t)[0]
        assert sp.simplify(t_b / t_a - (1 + (na - chi * nb) / nbt)) == 0
        assert sp.simplify(t_b - t_a - tau * ell * (1 - chi * nb / na) / nbt) == 0  # eq. (8b)
    return True


def derive_scalar_toy_reduction():
    """For y = x_A + x_B the corrected ratio is Appendix J's 1 + (σ_A²/σ_B² − 1)/(1 − ρ²) on
    both sides of ρ = −σ_B/σ_A, while eq. (9) as printed matches it only for Σ_yxB ≥ 0."""
    sa, sb = sp.symbols("sigma_A sigma_B", positive=True)
    rho = sp.Symbol("rho", real=True)
    S = sp.Matrix([[sa ** 2, rho * sa * sb], [rho * sa * sb, sb ** 2]])
    s = sp.Matrix([[1, 1]]) * S
    s_a, s_b = s[0], s[1]
    s_bt = sp.simplify(s_b - s_a / S[0, 0] * S[0, 1])
    assert sp.simplify(s_bt - sb ** 2 * (1 - rho ** 2)) == 0        # > 0 for |ρ| < 1
    appendix_j = 1 + (sa ** 2 / sb ** 2 - 1) / (1 - rho ** 2)
    # σ_A > σ_B ≥ |ρ|σ_B makes s_A > 0; A is first since s_A² − s_B² = (σ_A² − σ_B²)(s_A + s_B)
    # and s_A + s_B = σ_A² + 2ρσ_Aσ_B + σ_B² > 0.
    assert sp.expand(s_a ** 2 - s_b ** 2 - (sa ** 2 - sb ** 2) * (s_a + s_b)) == 0
    # Case Σ_yxB > 0: s_B parallel to s̃_B (χ = +1), |s_B| = s_B.
    corrected_pos = 1 + (s_a - s_b) / s_bt
    # Case Σ_yxB < 0: anti-parallel (χ = −1), |s_B| = −s_B.
    corrected_neg = 1 + (s_a + (-s_b)) / s_bt
    assert sp.simplify(corrected_pos - appendix_j) == 0
    assert sp.simplify(corrected_neg - appendix_j) == 0
    eq9_neg = 1 + (s_a - (-s_b)) / s_bt          # eq. (9) with |s_B| = −s_B when s_B < 0
    assert sp.simplify(eq9_neg - appendix_j) != 0
    # Σ_yxB < 0 happens exactly for ρ < −σ_B/σ_A.
    assert sp.simplify(s_b - sb * (sb + rho * sa)) == 0
    # Mis-attribution (U_A − W*_A)/W*_A with W* = (1, 1): ρσ_B/σ_A (Appendix J).
    u_a = s_a / S[0, 0]
    assert sp.simplify(u_a - 1 - rho * sb / sa) == 0
    return True


def derive_sharp_switch():
    """In gradient flow ∫₀^T [x(t) − H(t − t_A)] dt → ln(c/(1 + c))/λ → 0 (c → ∞) for the
    logistic x = 1/(1 + c e^{−λt}) with x(t_A) = ½: replacing A's sigmoid by a step at t_A in
    B's (linear-in-W_A) growth exponent is exact up to O(x₀)."""
    t, T, lam, c = sp.symbols("t T lambda c", positive=True)
    x = 1 / (1 + c * sp.exp(-lam * t))
    t_a = sp.log(c) / lam
    assert sp.simplify(x.subs(t, t_a) - sp.Rational(1, 2)) == 0
    F = sp.log(sp.exp(lam * t) + c) / lam          # an antiderivative of x
    assert sp.simplify(sp.diff(F, t) - x) == 0
    excess = (F.subs(t, T) - F.subs(t, 0)) - (T - t_a)
    limit_T = sp.limit(excess, T, sp.oo)
    assert sp.simplify(limit_T - sp.log(c / (1 + c)) / lam) == 0
    assert sp.limit(limit_T, c, sp.oo) == 0
    return True


def derive_adiabatic_second_phase():
    """With A at its conditional optimum W_A = (s_A − W_BΣ_BA)Σ_A^{-1}, B's error is
    s̃_B − W_B Σ̃_B (Σ̃_B a Schur complement), whose zero is B's block of Σ_yxΣ^{-1}."""
    a, b, c, sa, sbv, wb = sp.symbols("Sigma_A Sigma_AB Sigma_B s_A s_B W_B", real=True)
    wa = (sa - wb * b) / a
    e_b = sbv - wa * b - wb * c
    s_bt = sbv - sa / a * b
    schur = c - b ** 2 / a
    assert sp.simplify(e_b - (s_bt - wb * schur)) == 0
    S = sp.Matrix([[a, b], [b, c]])
    w_star = sp.Matrix([[sa, sbv]]) * S.inv()
    assert sp.simplify(w_star[1] - s_bt / schur) == 0
    return True


def derive_finite_lr_sensitivity():
    """Gradient descent multiplies a mode by 1 + ηε per step. With every mode starting ∝ u0
    (mode values ∝ u0², ln(1/w₀) = 2ℓ + const):
        dt_A/dℓ = 1/ln(1 + η‖s_A‖),
        d(t_B − t_A)/dℓ = [1 − ln(1 + ηχ‖s_B‖)/ln(1 + η‖s_A‖)] / ln(1 + η‖s̃_B‖),
    which tend to τ/‖s_A‖ and τ(1 − χk)/‖s̃_B‖ (τ = 1/η, eq. 8) as η → 0 at fixed ηt."""
    ell, eta, na, nb, nbt, ca, cb = sp.symbols("ell eta n_A n_B n_Bt c_A c_B", positive=True)
    for chi in (1, -1):
        ga, gb, gbt = sp.log(1 + eta * na), sp.log(1 + eta * chi * nb), sp.log(1 + eta * nbt)
        t_a = (2 * ell + ca) / (2 * ga)
        t_b = t_a + (2 * ell + cb - 2 * t_a * gb) / (2 * gbt)
        assert sp.simplify(sp.diff(t_a, ell) - 1 / ga) == 0
        assert sp.simplify(sp.diff(t_b - t_a, ell) - (1 - gb / ga) / gbt) == 0
        # Gradient-flow limit (times in units of τ = 1/η: multiply by η).
        lim = sp.limit(eta * (1 - gb / ga) / gbt, eta, 0)
        assert sp.simplify(lim - (1 - chi * nb / na) / nbt) == 0
        assert sp.simplify(sp.limit(eta / ga, eta, 0) - 1 / na) == 0
    return True


def derive_all():
    return all([derive_leading_order_ratio(), derive_scalar_toy_reduction(),
                derive_sharp_switch(), derive_adiabatic_second_phase(),
                derive_finite_lr_sensitivity()])


if __name__ == "__main__":
    print("timescales:", derive_all())
