"""Gradient-descent equations of fusion networks, derived from the loss (paper eqs. 3-5, 14-18).

Starting point: the loss ½⟨(y − ŷ)²⟩ of a network ŷ = Σ_m W_m^tot x_m. Averaging over the data
with linearity of ⟨·⟩ leaves only the moments Σ, Σ_yx and ⟨y²⟩:

    L = ½⟨y²⟩ − Σ_m W_m^tot ⟨x_m y⟩ + ½ Σ_mn W_m^tot ⟨x_m x_nᵀ⟩ W_n^totᵀ.

We differentiate this with sympy for small symbolic networks and check that −∂L/∂W equals the
right-hand sides of eqs. (3)–(5) (paper, with e_A, e_B of eq. 5), including the two-layer
late-fusion case (eq. 18). We also check the form of the loss used by the simulator,
L = L* + ½(W − W*)Σ(W − W*)ᵀ with W* = Σ_yxΣ^{-1} and L* = ½(⟨y²⟩ − Σ_yxΣ^{-1}Σ_xy).

Run as a script or through the test suite; every function raises AssertionError on failure.
"""
import sympy as sp


def _moments():
    sa2, sb2, sab, ya, yb, yy = sp.symbols("Sigma_A Sigma_B Sigma_AB s_A s_B yy", real=True)
    return sa2, sb2, sab, ya, yb, yy


def _loss(WA, WB, m):
    """½⟨(y − W_A x_A − W_B x_B)²⟩ for scalar modalities, expanded by linearity."""
    sa2, sb2, sab, ya, yb, yy = m
    return sp.Rational(1, 2) * (yy - 2 * WA * ya - 2 * WB * yb + WA ** 2 * sa2
                                + 2 * WA * WB * sab + WB ** 2 * sb2)


def _mat(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def derive_two_layer_late_fusion(h: int = 2):
    """−∂L/∂W for ŷ = W_A² W_A¹ x_A + W_B² W_B¹ x_B equals eq. (18) (τ = 1, scalar inputs)."""
    m = _moments()
    sa2, sb2, sab, ya, yb, yy = m
    A1, A2, B1, B2 = _mat("a", h, 1), _mat("c", 1, h), _mat("b", h, 1), _mat("d", 1, h)
    WA, WB = (A2 * A1)[0, 0], (B2 * B1)[0, 0]
    L = _loss(WA, WB, m)
    eA = ya - WA * sa2 - WB * sab        # eq. (5a), scalar case
    eB = yb - WA * sab - WB * sb2        # eq. (5b)
    rhs = {  # eq. (18)
        "A1": A2.T * eA, "A2": eA * A1.T, "B1": B2.T * eB, "B2": eB * B1.T,
    }
    for name, M in (("A1", A1), ("A2", A2), ("B1", B1), ("B2", B2)):
        grad = sp.Matrix(M.shape[0], M.shape[1], lambda i, j: -sp.diff(L, M[i, j]))
        assert sp.simplify(grad - rhs[name]) == sp.zeros(*M.shape), name
    return True


def derive_intermediate_fusion(h: int = 2):
    """L = 3, L_f = 2: −∂L/∂W equals eqs. (3a), (3b) and (4) for every layer."""
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
    for name, M in (("A1", A1), ("A2", A2), ("B1", B1), ("B2", B2), ("W3", W3)):
        grad = sp.Matrix(M.shape[0], M.shape[1], lambda i, j: -sp.diff(L, M[i, j]))
        assert sp.expand(grad - rhs[name]) == sp.zeros(*M.shape), name
    return True


def derive_shifted_loss():
    """½⟨(y − Wx)²⟩ = L* + ½(W − W*)Σ(W − W*)ᵀ with W* = Σ_yxΣ^{-1}, for 2×2 Σ."""
    sa2, sb2, sab, ya, yb, yy = _moments()
    S = sp.Matrix([[sa2, sab], [sab, sb2]])
    s = sp.Matrix([[ya, yb]])
    W = sp.Matrix([sp.symbols("W_A W_B", real=True)])
    L = _loss(W[0], W[1], (sa2, sb2, sab, ya, yb, yy))
    Wstar = s * S.inv()
    Lstar = sp.Rational(1, 2) * (yy - (s * S.inv() * s.T)[0, 0])
    shifted = Lstar + sp.Rational(1, 2) * ((W - Wstar) * S * (W - Wstar).T)[0, 0]
    assert sp.simplify(L - shifted) == 0
    return True


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

    a1 = sp.Matrix(sp.symbols("p0:2", real=True))
    a2 = sp.Matrix(sp.symbols("q0:2", real=True))
    K = (a1 * a2.T + a2 * a1.T) / 2
    dot = (a1.T * a2)[0, 0]
    n1, n2 = sp.sqrt((a1.T * a1)[0, 0]), sp.sqrt((a2.T * a2)[0, 0])
    lam = sp.symbols("lam")
    charpoly = sp.expand((K - lam * sp.eye(2)).det())
    for root in ((dot + n1 * n2) / 2, (dot - n1 * n2) / 2):
        assert sp.simplify(charpoly.subs(lam, root)) == 0
    t, r, q = sp.symbols("t r q", positive=True)
    # r dr e^{-r²/2} = e^{-t} dt with t = r²/2, and r² q = 2 t q.
    assert sp.simplify(sp.diff(r ** 2 / 2, r) - r) == 0
    assert sp.integrate(2 * q * t * sp.exp(-t), (t, 0, sp.oo)) == 2 * q
    mp.mp.dps = 30
    for c in (mp.mpf("0.01"), mp.mpf("0.37"), mp.mpf(2), mp.mpf(50)):
        direct = mp.quad(lambda x: mp.log(1 + mp.exp(-c * x)) * mp.exp(-x), [0, 1, mp.inf])
        series = mp.nsum(lambda n: (-1) ** (n + 1) / (n * (c * n + 1)), [1, mp.inf])
        closed = mp.log(2) - (mp.digamma(1 / (2 * c) + 1) - mp.digamma(1 / (2 * c) + mp.mpf(1) / 2)) / 2
        assert abs(direct - series) < mp.mpf("1e-20") and abs(direct - closed) < mp.mpf("1e-20")
    u = sp.Symbol("u")
    qq = sp.Symbol("q", real=True)
    series = sp.series(sp.log(1 + sp.exp(-u)), u, 0, 6).removeO()
    H = sp.integrate(sp.expand(series.subs(u, 2 * qq * t)) * sp.exp(-t), (t, 0, sp.oo))
    assert sp.simplify(H - (sp.log(2) - qq + qq ** 2 - 2 * qq ** 4)) == 0
    return True


def derive_all():
    return all([derive_two_layer_late_fusion(), derive_intermediate_fusion(),
                derive_shifted_loss(), derive_gaussian_logistic()])


if __name__ == "__main__":
    print("gradients:", derive_all())
