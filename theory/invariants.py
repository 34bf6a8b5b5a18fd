"""Balancing invariants (paper eqs. 38-41, corrected) and their drift under gradient descent.

For any loss ℓ(P) of a product P = ⋯ W^{l+1} W^l ⋯, gradient flow Ẇ^l = −(W^{>l})ᵀ G (W^{<l})ᵀ
(G = ∂ℓ/∂P) conserves W^l W^lᵀ − W^{l+1}ᵀ W^{l+1}; where two branches feed one layer the
conserved matrix is Σ_m W_m W_mᵀ − W_postᵀ W_post. A gradient-descent step changes each of
them by η²(G_l G_lᵀ − G_{l+1}ᵀ G_{l+1}) (at the fusion layer η²(Σ_m G_m G_mᵀ − G_postᵀ G_post)):
the first-order terms cancel as in the flow.

The check_* functions take one step of dlnfusion.train and compare the change of
dlnfusion.theory.balance_invariants (and of its traces, norm_invariants) with these
expressions evaluated at the initial weights.
"""
import numpy as np
import sympy as sp

from _checks import close_max as _close, random_params as _random_params

# The change of an invariant over one step is a difference of O(1) matrices: its float64
# rounding is ~1e-16 absolute, against an η² term of order 0.1 here, so 1e-12 relative to the
# largest entry of the derived change.
RTOL_FLOAT = 1e-12


def _m(name, r, c):
    return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def _chain():
    """A chain W3 W2 W1 (2×1, 2×2, 1×2) with ∂ℓ/∂P = g: the flows −(W^{>l})ᵀ G (W^{<l})ᵀ."""
    W1, W2, W3 = _m("a", 2, 1), _m("b", 2, 2), _m("c", 1, 2)
    g = sp.Symbol("g", real=True)
    G = sp.Matrix([[g]])
    d1 = -(W3 * W2).T * G                               # −(W^{>1})ᵀ G (W^{<1})ᵀ, W^{<1} = 1
    d2 = -W3.T * G * W1.T
    d3 = -G * (W2 * W1).T
    return (W1, W2, W3), g, (d1, d2, d3)


def derive_chain_invariant():
    """Gradient flow conserves W^l W^lᵀ − W^{l+1}ᵀ W^{l+1} along a chain. Its dlnfusion
    counterpart, balance_invariants, is checked through the gradient-descent form of the same
    cancellation (check_gd_drift)."""
    (W1, W2, W3), g, (d1, d2, d3) = _chain()
    inv12 = d1 * W1.T + W1 * d1.T - (d2.T * W2 + W2.T * d2)
    inv23 = d2 * W2.T + W2 * d2.T - (d3.T * W3 + W3.T * d3)
    assert sp.simplify(inv12) == sp.zeros(2, 2)
    assert sp.simplify(inv23) == sp.zeros(2, 2)
    # Traces: the norm relations of eqs. (40).
    assert sp.simplify((inv12).trace()) == 0
    return True


def derive_gd_drift():
    """One gradient-descent step W ← W − η∇ changes W^l W^lᵀ − W^{l+1}ᵀ W^{l+1} by
    η²(∇_l ∇_lᵀ − ∇_{l+1}ᵀ ∇_{l+1}): over a time T = nη the drift is O(ηT). Shown for the
    chain of derive_chain_invariant (∇_l = −d_l), for both pairs of consecutive layers."""
    eta = sp.Symbol("eta", positive=True)
    (W1, W2, W3), g, (d1, d2, d3) = _chain()
    new = [W + eta * d for W, d in ((W1, d1), (W2, d2), (W3, d3))]
    for lo, hi, dlo, dhi, nlo, nhi in ((W1, W2, d1, d2, new[0], new[1]),
                                      (W2, W3, d2, d3, new[1], new[2])):
        change = (nlo * nlo.T - nhi.T * nhi) - (lo * lo.T - hi.T * hi)
        assert sp.simplify(change - eta ** 2 * (dlo * dlo.T - dhi.T * dhi)) == sp.zeros(2, 2)
    return True


def check_gd_drift():
    """A branch of three layers (NetworkSpec.fusion(3, 3)): one step of dlnfusion.train changes
    balance_invariants "A:1-2", "A:2-3" (and norm_invariants) by η²(d_l d_lᵀ − d_{l+1}ᵀ d_{l+1})
    with the derived flows d_l at the initial weights and g = ∂L/∂W_A^tot."""
    import dlnfusion as dln
    from dlnfusion import Stats, theory as th

    (W1, W2, W3), g, (d1, d2, d3) = _chain()
    syms = list(W1) + list(W2) + list(W3) + [g]
    f = sp.lambdify(syms, [d1 * d1.T - d2.T * d2, d2 * d2.T - d3.T * d3])
    spec = dln.NetworkSpec.fusion(3, 3, width=2)
    st = Stats.scalar_toy(1.3, 0.8, 0.4, w_a=1.0, w_b=-0.5)
    params = _random_params(spec, 3, 0.8)
    eta = 0.3
    traj = dln.train(spec, st, params, lr=eta, steps=1, record_every=1, stop_loss=None)
    before = th.balance_invariants(spec, params)
    after = th.balance_invariants(spec, traj.final_params)
    A = [np.asarray(W)[0] for W in params.branches[0]]
    W = np.concatenate([np.asarray(m)[0] for m in dln.total_maps(spec, params)], axis=1)
    g_a = float((W @ st.sigma - st.sigma_yx)[0, 0])         # ∂L/∂W_A^tot of ½⟨(y − ŷ)²⟩
    want = f(*A[0].ravel(), *A[1].ravel(), *A[2].ravel(), g_a)
    for key, w in zip(("A:1-2", "A:2-3"), want):
        _close(np.asarray(after[key])[0] - np.asarray(before[key])[0], eta ** 2 * w, RTOL_FLOAT,
               f"drift of {key}")
    n0, n1 = th.invariants.norm_invariants(spec, params), th.invariants.norm_invariants(spec, traj.final_params)
    _close([np.asarray(n1[k])[0] - np.asarray(n0[k])[0] for k in ("A:1-2", "A:2-3")],
           [eta ** 2 * np.trace(w) for w in want], RTOL_FLOAT, "drift of the norm invariants")
    return True


def _fusion():
    """Two branches A, B (2×1 each) feeding a post-fusion layer Wp (1×2), ∂ℓ/∂W_m^tot = g_m."""
    A, B, Wp = _m("a", 2, 1), _m("b", 2, 1), _m("p", 1, 2)
    gA, gB = sp.symbols("g_A g_B", real=True)
    dA = -Wp.T * sp.Matrix([[gA]])
    dB = -Wp.T * sp.Matrix([[gB]])
    dP = -(sp.Matrix([[gA]]) * A.T + sp.Matrix([[gB]]) * B.T)
    return (A, B, Wp), (gA, gB), (dA, dB, dP)


def derive_fusion_invariant():
    """Two branches A, B feeding a post-fusion layer Wp: Σ_m W_m W_mᵀ − Wpᵀ Wp is conserved,
    with a general ∂ℓ/∂W_m^tot = G_m per modality (as for the population loss); one
    gradient-descent step changes it by η²(d_A d_Aᵀ + d_B d_Bᵀ − d_pᵀ d_p)."""
    (A, B, Wp), (gA, gB), (dA, dB, dP) = _fusion()
    change = (dA * A.T + A * dA.T) + (dB * B.T + B * dB.T) - (dP.T * Wp + Wp.T * dP)
    assert sp.simplify(change) == sp.zeros(2, 2)
    # Hence Σ_m ‖W_m‖² − ‖Wp‖² is conserved: eq. (41) when the start is balanced.
    eta = sp.Symbol("eta", positive=True)
    nA, nB, nP = A + eta * dA, B + eta * dB, Wp + eta * dP
    step = (nA * nA.T + nB * nB.T - nP.T * nP) - (A * A.T + B * B.T - Wp.T * Wp)
    assert sp.simplify(step - eta ** 2 * (dA * dA.T + dB * dB.T - dP.T * dP)) == sp.zeros(2, 2)
    return True


def check_fusion_invariant():
    """Early fusion, two layers (NetworkSpec.fusion(2, 1)): one step of dlnfusion.train changes
    balance_invariants "fusion" by η²(d_A d_Aᵀ + d_B d_Bᵀ − d_pᵀ d_p) at the initial weights."""
    import dlnfusion as dln
    from dlnfusion import Stats, theory as th

    (A, B, Wp), (gA, gB), (dA, dB, dP) = _fusion()
    f = sp.lambdify(list(A) + list(B) + list(Wp) + [gA, gB],
                    dA * dA.T + dB * dB.T - dP.T * dP)
    spec = dln.NetworkSpec.fusion(2, 1, width=2)
    eta = 0.3
    for st in (Stats.scalar_toy(1.3, 0.8, 0.4, w_a=1.0, w_b=-0.5),
               Stats.scalar_toy(2.0, 1.0, -0.7)):
        params = _random_params(spec, 5, 0.8)
        traj = dln.train(spec, st, params, lr=eta, steps=1, record_every=1, stop_loss=None)
        before = np.asarray(th.balance_invariants(spec, params)["fusion"])[0]
        after = np.asarray(th.balance_invariants(spec, traj.final_params)["fusion"])[0]
        a, b = (np.asarray(layers[0])[0] for layers in params.branches)
        p = np.asarray(params.post[0])[0]
        W = np.concatenate([np.asarray(m)[0] for m in dln.total_maps(spec, params)], axis=1)
        g = (W @ st.sigma - st.sigma_yx)[0]
        want = eta ** 2 * f(*a.ravel(), *b.ravel(), *p.ravel(), *g)
        _close(after - before, want, RTOL_FLOAT, "drift of the fusion invariant")
    return True


def derive_all():
    return all([derive_chain_invariant(), derive_fusion_invariant(), derive_gd_drift()])


def check_all():
    return all([check_gd_drift(), check_fusion_invariant()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("invariants:", derive_all(), "checked against dlnfusion:", check_all())
