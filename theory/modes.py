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
"""
import sympy as sp


def derive_gd_modes(h: int = 2, d: int = 2):
    """α and β are exact eigen-directions of one gradient-descent step (symbolic h, d small)."""
    eta, en = sp.symbols("eta e_norm", positive=True)
    W1 = sp.Matrix(h, d, lambda i, j: sp.Symbol(f"u_{i}{j}", real=True))
    W2 = sp.Matrix(1, h, lambda i, j: sp.Symbol(f"v_{j}", real=True))
    # ê: a generic unit vector in R^d, parameterized by an angle (d = 2).
    th = sp.Symbol("theta", real=True)
    ehat = sp.Matrix([[sp.cos(th), sp.sin(th)]]) if d == 2 else sp.Matrix([[1]])
    e = en * ehat
    W1n = W1 + eta * W2.T * e
    W2n = W2 + eta * e * W1.T
    alpha = (W1 * ehat.T + W2.T) / sp.sqrt(2)
    beta = (W1 * ehat.T - W2.T) / sp.sqrt(2)
    alpha_n = (W1n * ehat.T + W2n.T) / sp.sqrt(2)
    beta_n = (W1n * ehat.T - W2n.T) / sp.sqrt(2)
    assert sp.simplify(alpha_n - (1 + eta * en) * alpha) == sp.zeros(h, 1)
    assert sp.simplify(beta_n - (1 - eta * en) * beta) == sp.zeros(h, 1)
    if d == 2:
        ortho = sp.Matrix([[-sp.sin(th), sp.cos(th)]])
        assert sp.simplify(W1n * ortho.T - W1 * ortho.T) == sp.zeros(h, 1)
    # Total map along ê.
    total = (W2 * W1 * ehat.T)[0, 0]
    assert sp.simplify(total - ((alpha.T * alpha)[0, 0] - (beta.T * beta)[0, 0]) / 2) == 0
    return True


def derive_logistic_map():
    """With β = 0: w' = w(1 + η(s − σ²w))², i.e. x' = x(1 + g(1 − x))² with x = w/w*, g = ηs."""
    eta, s, sig2, w = sp.symbols("eta s sigma2 w", positive=True)
    a = sp.sqrt(2 * w)  # ‖α‖ for w = ½‖α‖²
    e = s - sig2 * w
    w_next = ((1 + eta * e) * a) ** 2 / 2
    assert sp.simplify(w_next - w * (1 + eta * (s - sig2 * w)) ** 2) == 0
    x, g = sp.symbols("x g", positive=True)
    wstar = s / sig2
    lhs = (w * (1 + eta * (s - sig2 * w)) ** 2).subs(w, x * wstar) / wstar
    assert sp.simplify(lhs - (x * (1 + g * (1 - x)) ** 2).subs(g, eta * s)) == 0
    return True


def derive_logistic_solution():
    """τ dw/dt = 2w(s − σ²w) is solved by w*/(1 + (w*/w₀ − 1)e^{−2st/τ}) (eq. 21), which is
    Kleinman et al.'s s e^{2st/τ}/(e^{2st/τ} − 1 + s/a₀) at σ² = 1 (eq. 3)."""
    t, tau, s, sig2, w0 = sp.symbols("t tau s sigma2 w0", positive=True)
    wstar = s / sig2
    w = wstar / (1 + (wstar / w0 - 1) * sp.exp(-2 * s * t / tau))
    assert sp.simplify(tau * sp.diff(w, t) - 2 * w * (s - sig2 * w)) == 0
    assert sp.simplify(w.subs(t, 0) - w0) == 0
    kleinman = s * sp.exp(2 * s * t / tau) / (sp.exp(2 * s * t / tau) - 1 + s / w0)
    assert sp.simplify(w.subs(sig2, 1) - kleinman) == 0
    # Eq. (21) as printed: u(t) = [(s/(σ² u(0)) − 1) e^{−2st/τ} + 1]^{-1}. Evaluated at t = 0 it
    # returns σ² u(0)/s, not u(0): the u(0) inside is the initial total weight w₀, while u(t)
    # on the left is the fraction w(t)/w*.
    u0 = sp.Symbol("u0", positive=True)
    printed = 1 / ((s / (sig2 * u0) - 1) * sp.exp(-2 * s * t / tau) + 1)
    assert sp.simplify(printed.subs(t, 0) - sig2 * u0 / s) == 0
    assert sp.simplify(printed - (w / wstar).subs(w0, u0)) == 0
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


def derive_all():
    return all([derive_gd_modes(), derive_gd_modes(h=3, d=1), derive_logistic_map(),
                derive_logistic_solution(), derive_balanced_two_layer_reduction()])


if __name__ == "__main__":
    print("modes:", derive_all())
