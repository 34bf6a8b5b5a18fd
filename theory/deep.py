"""Deep fusion networks: from the gradient-flow equations with the rank-one ansatz (43) to
the time ratios (paper eqs. 12, 13, 44-60) and the single-pathway solution.

Each derive_* function checks one step with sympy:

* the ansatz (43) turns eqs. (42) (the first phase, errors = Σ_yx) into eq. (44);
* the relation between the branches (45) and its L_f = 2 form (55);
* the change of variables from eq. (47) to eq. (48) and the integral I(L, L_f) (13), and the
  substitution y = 1/x that dlnfusion uses to evaluate it (and eqs. 58, 60);
* t_B (53, 54, 56b), the ratios (12), (57) (corrected) and (59), with the sign correction;
* the special cases: eq. (12) at L_f = L is eq. (9), eq. (59) at L_A = L_B is eq. (12);
* one balanced pathway of depth L: τ dw/dt = L w^{2−2/L}(s − σ²w) and its logit form.
"""
import sympy as sp


def _outer(a, b):
    return a * b.T


def derive_reduced_dynamics():
    """Eq. (44) from eqs. (42) and the ansatz (43), for L = 4 and L_f = 2, 3 (scalar inputs,
    scalar output, orthonormal hidden directions)."""
    uA, uB, u, sA, sB = sp.symbols("u_A u_B u s_A s_B", positive=True)
    e = [sp.Matrix([1, 0, 0]), sp.Matrix([0, 1, 0]), sp.Matrix([0, 0, 1])]
    one = sp.Matrix([[1]])
    for Lf in (2, 3):
        L = 4
        # Directions: branch A uses e0 -> e1 -> ..., B uses e2 -> e1 ...; shared fused dir e1.
        # Build layer lists with (out_dir, in_dir); input direction is the scalar 1.
        rA = [e[0], e[2], e[1]][:Lf - 1] if Lf > 2 else [e[0]]
        rB = [e[2], e[0], e[1]][:Lf - 1] if Lf > 2 else [e[2]]
        fused = e[1]
        chainA = [one] + rA + [fused]   # directions between layers of branch A
        chainB = [one] + rB + [fused]
        # Post layers: fused -> h -> ... -> output
        post_dirs = [fused] + ([e[0]] if L - Lf > 1 else []) + [one]
        WA = [uA * _outer(chainA[l + 1], chainA[l]) for l in range(Lf)]
        WB = [uB * _outer(chainB[l + 1], chainB[l]) for l in range(Lf)]
        WP = [u * _outer(post_dirs[j + 1], post_dirs[j]) for j in range(L - Lf)]

        def prod(mats, n):
            out = sp.eye(n)
            for W in mats:
                out = W * out
            return out

        def rhs_pre(W, s, l):
            above = prod(W[l + 1:] + WP, W[l].shape[0]) if (W[l + 1:] + WP) else sp.eye(1)
            below = prod(W[:l], 1)  # the branch input is a scalar
            return above.T * sp.Matrix([[s]]) * below.T

        for l in range(Lf):
            assert sp.simplify(rhs_pre(WA, sA, l) - sA * uA ** (Lf - 1) * u ** (L - Lf)
                               * WA[l] / uA) == sp.zeros(*WA[l].shape)
            assert sp.simplify(rhs_pre(WB, sB, l) - sB * uB ** (Lf - 1) * u ** (L - Lf)
                               * WB[l] / uB) == sp.zeros(*WB[l].shape)
        for j in range(L - Lf):
            above = prod(WP[j + 1:], WP[j].shape[0])
            totA, totB = prod(WA + WP[:j], 1), prod(WB + WP[:j], 1)
            rhs = above.T * sp.Matrix([[sA]]) * totA.T + above.T * sp.Matrix([[sB]]) * totB.T
            du = (sA * uA ** Lf + sB * uB ** Lf) * u ** (L - Lf - 1)
            assert sp.simplify(rhs - du * WP[j] / u) == sp.zeros(*WP[j].shape)
    return True


def derive_branch_relation():
    """du_B/du_A = k u_B^{L_f−1}/u_A^{L_f−1} integrates to eq. (45), or to eq. (55) at L_f = 2."""
    uA, u0, k = sp.symbols("u_A u_0 k", positive=True)
    for Lf in (3, 4, 5):
        p = 2 - Lf
        uB = (u0 ** p + k * (uA ** p - u0 ** p)) ** (sp.Integer(1) / p)
        assert sp.simplify(sp.diff(uB, uA) - k * uB ** (Lf - 1) / uA ** (Lf - 1)) == 0
        assert sp.simplify(uB.subs(uA, u0) - u0) == 0
    uB = u0 * (uA / u0) ** k
    assert sp.simplify(sp.diff(uB, uA) - k * uB / uA) == 0
    # Eq. (51): as u_A -> oo, u_B^{2-L_f} -> (1 - k) u0^{2-L_f} (L_f > 2).
    for Lf in (3, 4):
        p = 2 - Lf
        lim = sp.limit(u0 ** p + k * (uA ** p - u0 ** p), uA, sp.oo)
        assert sp.simplify(lim - (1 - k) * u0 ** p) == 0
    return True


def derive_fusion_integral():
    """Eq. (47) → eq. (48): with u_A = u0 x the t_A integrand becomes u0^{2−L} times the
    integrand of I(L, L_f) (eq. 13); and y = 1/x gives dlnfusion's bounded form."""
    x, u0, k, y = sp.symbols("x u_0 k y", positive=True)
    for L, Lf in ((4, 3), (5, 3), (5, 4), (6, 4)):
        p = 2 - Lf
        ua = u0 * x
        ub2 = (k * ua ** p + (1 - k) * u0 ** p) ** (sp.Rational(2, p))
        integrand47 = ua ** (1 - Lf) * (ua ** 2 + ub2) ** sp.Rational(Lf - L, 2) * u0  # du_A
        integrand13 = x ** (1 - L) * (1 + (k + (1 - k) * x ** (Lf - 2)) ** sp.Rational(2, p)) \
            ** sp.Rational(Lf - L, 2)
        ratio = sp.simplify(sp.powsimp(sp.powdenest(integrand47 / (u0 ** (2 - L) * integrand13),
                                                    force=True), force=True))
        assert sp.simplify(ratio.subs({x: sp.Rational(3, 2), k: sp.Rational(1, 3),
                                       u0: sp.Rational(1, 10)}) - 1) == 0
        assert sp.simplify(ratio.subs({x: 5, k: sp.Rational(3, 4), u0: sp.Rational(2, 7)}) - 1) == 0
        # y = 1/x: x^{1-L} dx → y^{L-3} dy and the bracket takes the bounded form.
        q = Lf - 2
        f_y = y ** (L - 3) * (1 + y ** 2 * (k * y ** q + 1 - k) ** sp.Rational(-2, q)) \
            ** sp.Rational(Lf - L, 2)
        back = (integrand13.subs(x, 1 / y) / y ** 2)
        for vals in ({y: sp.Rational(1, 3), k: sp.Rational(1, 5)},
                     {y: sp.Rational(7, 8), k: sp.Rational(2, 3)}):
            assert sp.simplify(back.subs(vals) - f_y.subs(vals)) == 0
    # L_f = L: the bracket has exponent 0 and I(L, L) = 1/(L - 2).
    for L in (3, 4, 5):
        assert sp.integrate(x ** (1 - L), (x, 1, sp.oo)) == sp.Rational(1, L - 2)
    # L_f = 2 (eq. 58): y = 1/x turns x^{-1}(x^2 + x^{2k})^{1-L/2} into y^{L-3}(1+y^{2(1-k)})^{1-L/2}.
    for L in (3, 4, 6):
        f58 = x ** -1 * (x ** 2 + x ** (2 * k)) ** (1 - sp.Rational(L, 2))
        fy = y ** (L - 3) * (1 + y ** (2 * (1 - k))) ** (1 - sp.Rational(L, 2))
        vals = {y: sp.Rational(2, 5), k: sp.Rational(1, 4)}
        assert sp.simplify((f58.subs(x, 1 / y) / y ** 2).subs(vals) - fy.subs(vals)) == 0
    return True


def derive_second_phase_and_ratio():
    """Eqs. (53)-(54) and the ratio (12) for L_f > 2; eqs. (56b), (57) for L_f = 2 (corrected:
    no factor 1/(L_f − 2), exponent 1 − 2/L); the sign correction χ."""
    t, tau, uB, ub0, ua, snt, na, nb, u0, I, ell = sp.symbols(
        "t tau u_B u_B0 U_A s_Bt n_A n_B u_0 I ell", positive=True)
    L, Lf = 4, 3
    c = snt * ua ** (1 - sp.Rational(Lf, L))            # rate factor of eq. (53)
    # τ du_B/dt = c u_B^{L_f-1} integrates to the eq. (53) form:
    tt = tau * (uB ** (2 - Lf) - ub0 ** (2 - Lf)) / ((2 - Lf) * c)
    assert sp.simplify(sp.diff(tt, uB) * c * uB ** (Lf - 1) - tau) == 0
    # u_B -> oo: t_B − t_A = τ u_B(t_A)^{2-L_f}/((L_f − 2) c); with u_B(t_A)^{2-L_f} = (1 − χk)u0^{2-L_f}:
    for chi in (1, -1):
        k = nb / na
        gap = tau * (1 - chi * k) * u0 ** (2 - Lf) / ((Lf - 2) * c)
        t_a = tau * u0 ** (2 - L) * I / na
        ratio = 1 + (na - chi * nb) * u0 ** (L - Lf) / ((Lf - 2) * ua ** (1 - sp.Rational(Lf, L))
                                                      * snt * I)
        assert sp.simplify(1 + gap / t_a - ratio) == 0
    # L_f = 2: τ du_B/dt = c2 u_B, from u_B(t_A) = u0^{1−χk} U_A^{χk/L} (eq. 55 at u_A = U_A^{1/L})
    # to O(1): t_B − t_A = τ(1 − χk) ln(1/u0)/c2 + O(1), c2 = ‖s̃_B‖ U_A^{1−2/L}.
    L = 4
    c2 = snt * ua ** (1 - sp.Rational(2, L))
    for chi in (1, -1):
        k = nb / na
        ub_ta = u0 ** (1 - chi * k) * ua ** (chi * k / L)
        gap_exact = tau * (sp.log(1) - sp.log(ub_ta)) / c2   # growth to O(1)
        leading = tau * (1 - chi * k) * sp.log(1 / u0) / c2
        diff = sp.expand_log(gap_exact - leading, force=True)
        assert sp.simplify(diff.diff(u0)) == 0      # the remainder does not depend on u0
        t_a = tau * u0 ** (2 - L) * I / na
        ratio57 = 1 + (na - chi * nb) * u0 ** (L - 2) * sp.log(1 / u0) / (
            ua ** (1 - sp.Rational(2, L)) * snt * I)
        assert sp.simplify(1 + leading / t_a - ratio57) == 0
    return True


def derive_special_cases():
    """Eq. (12) at L_f = L is eq. (9); eq. (59) at L_A = L_B = L_f is eq. (12)."""
    na, nb, snt, ua, u0, I, k, y = sp.symbols("n_A n_B s_Bt U_A u_0 I k y", positive=True)
    for L in (3, 4, 6):
        Lf = L
        eq12 = 1 + (na - nb) * u0 ** (L - Lf) / ((Lf - 2) * ua ** (1 - sp.Rational(Lf, L))
                                                * snt * sp.Rational(1, L - 2))
        assert sp.simplify(eq12 - (1 + (na - nb) / snt)) == 0
    for La, Lc in ((3, 1), (4, 1), (3, 2), (5, 0)):
        Lb = La
        num59 = u0 ** (Lc + La - Lb) * na / (Lb - 2) - u0 ** Lc * nb / (La - 2)
        eq59 = 1 + num59 / (ua ** sp.Rational(Lc, La + Lc) * snt * I)
        L, Lf = La + Lc, La
        eq12 = 1 + (na - nb) * u0 ** (L - Lf) / ((Lf - 2) * ua ** (1 - sp.Rational(Lf, L))
                                                * snt * I)
        assert sp.simplify(eq59 - eq12) == 0
        # and the integrals coincide: c = k when L_A = L_B.
        q = La - 2
        i60 = y ** (La + Lc - 3) * (1 + y ** 2 * (1 - k + k * y ** q) ** sp.Rational(-2, q)) \
            ** sp.Rational(-Lc, 2)
        i13 = y ** (L - 3) * (1 + y ** 2 * (k * y ** q + 1 - k) ** sp.Rational(-2, q)) \
            ** sp.Rational(Lf - L, 2)
        assert sp.simplify(i60 - i13) == 0
    return True


def derive_unequal_depths():
    """Eq. (59): the first phase gives (u_B/u0)^{2−L_B} = 1 + c(x^{2−L_A} − 1) (eq. 60) and the
    second phase starts from u_B(t_A)^{2−L_B} = u0^{2−L_B}(1 − c); assembling t_B/t_A."""
    uA, u0, k, na, nb, snt, ua, I, tau = sp.symbols("u_A u_0 k n_A n_B s_Bt U_A I tau",
                                                    positive=True)
    for La, Lb, Lc in ((3, 4, 1), (4, 3, 1), (3, 5, 0)):
        uB = (u0 ** (2 - Lb) + sp.Rational(Lb - 2, La - 2) * k * (uA ** (2 - La) - u0 ** (2 - La))) \
            ** sp.Rational(1, 2 - Lb)
        # du_B/du_A = k u_B^{L_B−1}/u_A^{L_A−1} (ratio of the branch equations).
        assert sp.simplify(sp.diff(uB, uA) - k * uB ** (Lb - 1) / uA ** (La - 1)) == 0
        c = sp.Rational(Lb - 2, La - 2) * k * u0 ** (Lb - La)
        lim = sp.limit(uB ** (2 - Lb), uA, sp.oo)
        assert sp.simplify(lim - u0 ** (2 - Lb) * (1 - c)) == 0
        rate = snt * ua ** sp.Rational(Lc, La + Lc)
        gap = tau * lim / ((Lb - 2) * rate)
        t_a = tau * u0 ** (2 - La - Lc) * I / na
        kk = nb / na
        num = u0 ** (Lc + La - Lb) * na / (Lb - 2) - u0 ** Lc * nb / (La - 2)
        eq59 = 1 + num / (ua ** sp.Rational(Lc, La + Lc) * snt * I)
        assert sp.simplify((1 + gap / t_a).subs(k, kk) - eq59) == 0
    return True


def derive_pathway():
    """A balanced pathway of depth L, every layer of norm a, w = a^L along Σ_yx (white input):
    τ da/dt = a^{L−1}(s − σ² a^L) gives τ dw/dt = L w^{2−2/L}(s − σ² w); with z = w/w* and the
    logit ζ = ln(z/(1 − z)), dt ∝ z^{2/L−2}/(1 − z) dz = (1 + e^{−ζ})^{1−2/L} dζ."""
    a, s, sig2, tau = sp.symbols("a s sigma2 tau", positive=True)
    for L in (2, 3, 4, 5):
        adot = a ** (L - 1) * (s - sig2 * a ** L) / tau
        w = a ** L
        wdot = sp.diff(w, a) * adot
        assert sp.simplify(wdot - L * w ** (2 - sp.Rational(2, L)) * (s - sig2 * w) / tau) == 0
        z, zeta = sp.symbols("z zeta", positive=True)
        lhs = z ** (sp.Rational(2, L) - 2) / (1 - z)
        zz = 1 / (1 + sp.exp(-zeta))                    # z as a function of the logit
        jac = sp.diff(zz, zeta)
        rhs = (1 + sp.exp(-zeta)) ** (1 - sp.Rational(2, L))
        assert sp.simplify(lhs.subs(z, zz) * jac - rhs) == 0
    return True


def derive_all():
    return all([derive_reduced_dynamics(), derive_branch_relation(), derive_fusion_integral(),
                derive_second_phase_and_ratio(), derive_special_cases(), derive_unequal_depths(),
                derive_pathway()])


if __name__ == "__main__":
    print("deep:", derive_all())
