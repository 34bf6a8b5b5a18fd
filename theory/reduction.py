"""Why random initial weights delay learning, and the signal-subspace reduction.

1. Gradient updates are outer products of backward and forward signals: for a chain
   P = w M_{L−1} ⋯ M_2 v with scalar input and output, ∂P/∂M_l = b_l f_lᵀ with
   f_l = M_{l−1}⋯M_2 v and b_l = (w M_{L−1}⋯M_{l+1})ᵀ. So every update of every layer lies in
   span{backward signals} ⊗ span{forward signals}: the weights move only inside the subspaces
   those signals span (at most Σ_m d_m + d_out dimensions per hidden space). dlnfusion's
   reduction keeps exactly these subspaces of the initial weights.
2. For a chain with two hidden matrices (L = 4), the first phase (errors ≈ Σ_yx = s) is a
   *linear* system in x = M_2 v and y = M_3ᵀ w while ‖v‖, ‖w‖ barely move:
       ẋ = s‖v‖² y,   ẏ = s‖w‖² x,   P = wᵀ M_3 M_2 v = x·y,
   so the growing mode (x/‖v‖ + y/‖w‖)/2 grows like e^{s‖v‖‖w‖t} from a random seed of size
   ~u0/√width — the analogue of the two-layer α mode.
3. Once this mode has grown, the chain is an aligned chain with unbalanced layers
   (a_1 = a_4 = a, a_2 = a_3 = m, a² − m² = u0²), whose escape obeys ṁ = s m(u0² + m²): the time
   from a seed m0 is t* = ln(√(u0² + m0²)/m0)/(s u0²), i.e. ln(√width)/(s u0²) for random weights
   instead of 1/(2 s u0²) for balanced aligned ones — five times longer at u0 = 0.1, width 100.
"""
import sympy as sp


def derive_outer_product_updates():
    v = sp.Matrix(sp.symbols("v0:2", real=True))
    w = sp.Matrix([sp.symbols("w0:2", real=True)])
    M2 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    M3 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"n{i}{j}", real=True))
    P = (w * M3 * M2 * v)[0, 0]
    grad2 = sp.Matrix(2, 2, lambda i, j: sp.diff(P, M2[i, j]))
    grad3 = sp.Matrix(2, 2, lambda i, j: sp.diff(P, M3[i, j]))
    assert sp.simplify(grad2 - (w * M3).T * v.T) == sp.zeros(2, 2)       # b_2 f_2ᵀ
    assert sp.simplify(grad3 - w.T * (M2 * v).T) == sp.zeros(2, 2)       # b_3 f_3ᵀ
    return True


def derive_linear_first_phase():
    """With v, w frozen: ẋ = M_2' v = s‖v‖² y and ẏ = M_3'ᵀ w = s‖w‖² x; P = x·y."""
    s = sp.Symbol("s", positive=True)
    v = sp.Matrix(sp.symbols("v0:2", real=True))
    w = sp.Matrix([sp.symbols("w0:2", real=True)])
    M2 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    M3 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"n{i}{j}", real=True))
    dM2 = s * (w * M3).T * v.T
    dM3 = s * w.T * (M2 * v).T
    x, y = M2 * v, (w * M3).T
    assert sp.simplify(dM2 * v - s * (v.T * v)[0, 0] * y) == sp.zeros(2, 1)
    assert sp.simplify(dM3.T * w.T - s * (w * w.T)[0, 0] * x) == sp.zeros(2, 1)
    assert sp.simplify((w * M3 * M2 * v)[0, 0] - (x.T * y)[0, 0]) == 0
    # Growing mode: with ξ = x/‖v‖, ζ = y/‖w‖: ξ̇ = s‖v‖‖w‖ ζ, ζ̇ = s‖v‖‖w‖ ξ.
    a, c, t = sp.symbols("a c t", positive=True)
    sol = sp.exp(s * a * c * t)
    assert sp.simplify(sp.diff(sol, t) - s * a * c * sol) == 0
    return True


def derive_unbalanced_escape():
    """ṁ = s m(u0² + m²) from m0: t(m) = [ln(m/m0) − ½ ln((u0² + m²)/(u0² + m0²))]/(s u0²),
    escaping (m → ∞) at t* = ln(√(u0² + m0²)/m0)/(s u0²); balanced aligned (m0 = u0 = a):
    ṁ = s m³ escapes at 1/(2 s u0²)."""
    m, m0, u0, s = sp.symbols("m m_0 u_0 s", positive=True)
    t = (sp.log(m / m0) - sp.log((u0 ** 2 + m ** 2) / (u0 ** 2 + m0 ** 2)) / 2) / (s * u0 ** 2)
    assert sp.simplify(1 / sp.diff(t, m) - s * m * (u0 ** 2 + m ** 2)) == 0
    assert sp.simplify(t.subs(m, m0)) == 0
    t_star = sp.limit(t, m, sp.oo)
    assert sp.simplify(t_star - sp.log(sp.sqrt(u0 ** 2 + m0 ** 2) / m0) / (s * u0 ** 2)) == 0
    tb = (u0 ** -2 - m ** -2) / (2 * s)                 # balanced: ṁ = s m³ from u0
    assert sp.simplify(1 / sp.diff(tb, m) - s * m ** 3) == 0
    assert sp.limit(tb, m, sp.oo) == 1 / (2 * s * u0 ** 2)
    # Conservation behind a² − m² = u0²: d/dt(a² − m²) = 0 for ȧ = s a m², ṁ = s a² m.
    a = sp.Symbol("a", positive=True)
    assert sp.simplify(2 * a * (s * a * m ** 2) - 2 * m * (s * a ** 2 * m)) == 0
    return True


def derive_all():
    return all([derive_outer_product_updates(), derive_linear_first_phase(),
                derive_unbalanced_escape()])


if __name__ == "__main__":
    print("reduction:", derive_all())
