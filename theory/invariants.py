"""Balancing invariants (paper eqs. 38-41, corrected) and their drift under gradient descent.

For any loss ℓ(P) of a product P = ⋯ W^{l+1} W^l ⋯, gradient flow Ẇ^l = −(W^{>l})ᵀ G (W^{<l})ᵀ
(G = ∂ℓ/∂P) conserves W^l W^lᵀ − W^{l+1}ᵀ W^{l+1}; where two branches feed one layer the
conserved matrix is Σ_m W_m W_mᵀ − W_postᵀ W_post. A gradient-descent step changes each of
them by η²(G_l G_lᵀ − G_{l+1}ᵀ G_{l+1}): the first-order terms cancel as in the flow.
"""
import sympy as sp


def _m(name, r, c):
    return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def derive_chain_invariant():
    W1, W2, W3 = _m("a", 2, 1), _m("b", 2, 2), _m("c", 1, 2)
    G = sp.Matrix([[sp.Symbol("g", real=True)]])       # ∂ℓ/∂P for a scalar output
    d1 = -(W3 * W2).T * G                               # −(W^{>1})ᵀ G (W^{<1})ᵀ, W^{<1} = 1
    d2 = -W3.T * G * W1.T
    d3 = -G * (W2 * W1).T
    inv12 = d1 * W1.T + W1 * d1.T - (d2.T * W2 + W2.T * d2)
    inv23 = d2 * W2.T + W2 * d2.T - (d3.T * W3 + W3.T * d3)
    assert sp.simplify(inv12) == sp.zeros(2, 2)
    assert sp.simplify(inv23) == sp.zeros(2, 2)
    # Traces: the norm relations of eqs. (40).
    assert sp.simplify((inv12).trace()) == 0
    return True


def derive_fusion_invariant():
    """Two branches A, B feeding a post-fusion layer Wp: Σ_m W_m W_mᵀ − Wpᵀ Wp is conserved,
    with a general ∂ℓ/∂W_m^tot = G_m per modality (as for the population loss)."""
    A, B, Wp = _m("a", 2, 1), _m("b", 2, 1), _m("p", 1, 2)
    gA, gB = sp.symbols("g_A g_B", real=True)
    dA = -Wp.T * sp.Matrix([[gA]])
    dB = -Wp.T * sp.Matrix([[gB]])
    dP = -(sp.Matrix([[gA]]) * A.T + sp.Matrix([[gB]]) * B.T)
    change = (dA * A.T + A * dA.T) + (dB * B.T + B * dB.T) - (dP.T * Wp + Wp.T * dP)
    assert sp.simplify(change) == sp.zeros(2, 2)
    # Hence Σ_m ‖W_m‖² − ‖Wp‖² is conserved: eq. (41) when the start is balanced.
    return True


def derive_gd_drift():
    """One gradient-descent step W ← W − η∇ changes W^l W^lᵀ − W^{l+1}ᵀ W^{l+1} by
    η²(∇_l ∇_lᵀ − ∇_{l+1}ᵀ ∇_{l+1}): over a time T = nη the drift is O(ηT)."""
    eta = sp.Symbol("eta", positive=True)
    W1, W2 = _m("a", 2, 1), _m("c", 1, 2)
    g = sp.Symbol("g", real=True)
    G1 = W2.T * g                                      # ∇_{W1} of g·(W2 W1)
    G2 = sp.Matrix([[g]]) * W1.T
    N1, N2 = W1 - eta * G1, W2 - eta * G2
    before = W1 * W1.T - W2.T * W2
    after = N1 * N1.T - N2.T * N2
    assert sp.simplify(after - before - eta ** 2 * (G1 * G1.T - G2.T * G2)) == sp.zeros(2, 2)
    return True


def derive_all():
    return all([derive_chain_invariant(), derive_fusion_invariant(), derive_gd_drift()])


if __name__ == "__main__":
    print("invariants:", derive_all())
