"""Deep versus shallow linear networks with a source disabled (Kleinman, Achille & Soatto,
CVPR 2023, Section 2, eqs. 1-3 and Fig. 2): the closed forms of dlnfusion.theory.sources.

Loss in moments (theory/losses.py): L = ½ tr Σ_yy − tr(W Σ_xy) + ½ tr(W Σ Wᵀ), Σ = diag(d)
(d_k = 1 for an enabled input column, 0 for a disabled one: dlnfusion.interventions.delete).
Time: the toolkit's gradient-descent step θ' = θ − η ∂L/∂θ is the explicit Euler step dt = 1
of τ dθ/dt = −∂L/∂θ with τ = 1/η (dlnfusion.training.api), derived below.

* Deep, W = W² W¹: the aligned balanced ansatz W¹ = R diag(q) Vᵀ, W² = U diag(q) Rᵀ turns the
  matrix flow into τ dq_α/dt = q_α(s_α − q_α²), hence τ da/dt = 2a(s − a) for a = q² (the
  factor 2), solved by the paper's eq. (3); its half-way time t½ = τ ln(s/a₀ − 1)/(2s).
  Derived with concrete rational orthonormal U, V, R and symbolic s, q, for the full task
  (Σ = I) and for a task whose third input column is disabled (Σ = diag(1, 1, 0), V's third
  row 0): the disabled column of W¹ receives no gradient.
* Shallow, W: τ dW_jk/dt = Σ_yx,jk − d_k W_jk, solved per entry (dsolve); the strength of a
  source relaxes as f∞ + (f0 − f∞)e^{−t/τ}, t½ = τ ln(2(f∞ − f0)/f∞).
* Source strength ⟨W_m, Σ_yx,m⟩ = Σ_α a_α s_α ‖v_{α,m}‖²: non-negative weights, so a source's
  strength increases monotonically when every a_α does (one half-way crossing).

The check_* functions evaluate these expressions (lambdified, mpmath 30 digits where the
exponentials overflow float64) and compare them with the library.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

from _checks import close_each as _close, close_max as _close_max

# Both sides evaluate the same closed form in float64 (the library) and in 30-digit mpmath
# (the derivation): a few roundings apart (~1e-15).
RTOL_FLOAT = 1e-12
# Half-way times: the library's brentq root (xtol 1e-12 time units, rtol 4 eps) against the
# derived explicit formula; times are O(10-100), so ≤ 1e-13 relative.
RTOL_ROOT = 1e-11

_T = sp.symbols("t tau", positive=True)

# Rational orthonormal bases: (3/5, 4/5) rotations and the 3 × 3 orthogonal (1/3)[[1,2,2],...].
_U = sp.Matrix([[sp.Rational(3, 5), -sp.Rational(4, 5)], [sp.Rational(4, 5), sp.Rational(3, 5)]])
_O3 = sp.Matrix([[1, 2, 2], [2, 1, -2], [2, -2, 1]]) / 3
_R = _O3[:, :2]                      # h = 3 hidden units, r = 2 modes


def _cases():
    """(name, Σ, V) for the full task (Σ = I₃, V two columns of _O3) and the task with the third
    input column disabled (Σ = diag(1, 1, 0), V with a zero third row)."""
    V_full = _O3[:, 1:]
    V_off = sp.Matrix([[sp.Rational(5, 13), -sp.Rational(12, 13)],
                       [sp.Rational(12, 13), sp.Rational(5, 13)], [0, 0]])
    return (("full", sp.eye(3), V_full), ("disabled", sp.diag(1, 1, 0), V_off))


def _loss(W, Syx, Sigma):
    """L − ½ tr Σ_yy = −tr(W Σ_xy) + ½ tr(W Σ Wᵀ) (the constant drops out of every gradient)."""
    return -(W * Syx.T).trace() + (W * Sigma * W.T).trace() / 2


def derive_time_unit():
    """One gradient-descent step θ − η g is the Euler step dt = 1 of τ dθ/dt = −g at τ = 1/η.
    No library counterpart of its own: it is the convention every check below evaluates with
    (tau = 1/lr); check_deep_solution and check_shallow_solution use it."""
    eta, theta, g = sp.symbols("eta theta g", real=True)
    tau = 1 / eta
    euler = theta + 1 * (-g / tau)
    assert sp.simplify(euler - (theta - eta * g)) == 0
    return True


def derive_deep_reduction():
    """Gradient flow of W¹ (3 × 3), W² (2 × 3) on the aligned balanced ansatz, both cases:
    −∂L/∂W¹ = R diag(q(s − q²)) Vᵀ and −∂L/∂W² = U diag(q(s − q²)) Rᵀ, i.e. the ansatz is kept
    with τ dq/dt = q(s − q²); then τ da/dt = 2a(s − a) for a = q². The disabled column of W¹
    (third) has zero gradient: with V's third row 0 it stays 0. The library counterpart, the
    initialization aligned_params builds and the total map it implies, is evaluated by
    check_deep_solution."""
    s = sp.symbols("s_1 s_2", positive=True)
    q = sp.symbols("q_1 q_2", positive=True)
    W1s = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"w1_{i}{j}", real=True))
    W2s = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"w2_{i}{j}", real=True))
    for _, Sigma, V in _cases():
        assert sp.simplify(V.T * V - sp.eye(2)) == sp.zeros(2, 2)
        Syx = _U * sp.diag(*s) * V.T
        L = _loss(W2s * W1s, Syx, Sigma)
        g1 = sp.Matrix(3, 3, lambda i, j: -sp.diff(L, W1s[i, j]))
        g2 = sp.Matrix(2, 3, lambda i, j: -sp.diff(L, W2s[i, j]))
        Q = sp.diag(*q)
        ansatz = dict(zip(list(W1s), list(_R * Q * V.T)))
        ansatz.update(zip(list(W2s), list(_U * Q * _R.T)))
        dq = sp.diag(*[q[k] * (s[k] - q[k] ** 2) for k in range(2)])
        # Polynomials with rational coefficients: expand decides equality exactly.
        assert sp.expand(g1.subs(ansatz) - _R * dq * V.T) == sp.zeros(3, 3)
        assert sp.expand(g2.subs(ansatz) - _U * dq * _R.T) == sp.zeros(2, 3)
        # Balanced: W¹W¹ᵀ = W²ᵀW² = R Q² Rᵀ; total map U diag(q²) Vᵀ.
        W1a, W2a = _R * Q * V.T, _U * Q * _R.T
        assert sp.expand(W1a * W1a.T - W2a.T * W2a) == sp.zeros(3, 3)
        assert sp.expand(W2a * W1a - _U * sp.diag(*[qq ** 2 for qq in q]) * V.T) \
            == sp.zeros(2, 3)
    # a = q²: τ da/dt = 2q τ dq/dt = 2a(s − a).
    qq, ss = sp.symbols("q s", positive=True)
    assert sp.simplify(2 * qq * (qq * (ss - qq ** 2)) - 2 * qq ** 2 * (ss - qq ** 2)) == 0
    return True


@lru_cache(maxsize=None)
def _deep_solution():
    """τ da/dt = 2a(s − a), a(0) = a₀, by separation of variables:
    ∫_{a₀}^{a} τ dx/(2x(s − x)) = t, solved for a (sympy's integrate and solve; faster than
    dsolve and the same algebra)."""
    t, tau = _T
    s, a0, a, x = sp.symbols("s a0 a x", positive=True)
    F = sp.integrate(sp.apart(tau / (2 * x * (s - x)), x), x)
    G = sp.expand_log(F.subs(x, a) - F.subs(x, a0), force=True)
    sols = sp.solve(sp.Eq(G, t), a)
    assert len(sols) == 1
    return (t, tau, s, a0), sols[0]


def _paper_form():
    """Eq. (3) as printed, s e^{2st/τ}/(e^{2st/τ} − 1 + s/a₀); derive_deep_solution proves it
    equal to the derived solution."""
    (t, tau, s, a0), _ = _deep_solution()
    return (t, tau, s, a0), s * sp.exp(2 * s * t / tau) / (sp.exp(2 * s * t / tau) - 1 + s / a0)


def derive_deep_solution():
    """The solution of τ da/dt = 2a(s − a) (separation of variables) is the paper's eq. (3),
    a(t) = s e^{2st/τ}/(e^{2st/τ} − 1 + s/a₀); it passes s/2 at t½ = τ ln(s/a₀ − 1)/(2s)."""
    (t, tau, s, a0), a = _deep_solution()
    _, paper = _paper_form()
    assert sp.simplify(a - paper) == 0
    assert sp.simplify(tau * sp.diff(paper, t) - 2 * paper * (s - paper)) == 0
    assert sp.simplify(paper.subs(t, 0) - a0) == 0
    t_half = tau * sp.log(s / a0 - 1) / (2 * s)
    assert sp.simplify(paper.subs(t, t_half) - s / 2) == 0
    return True


def check_deep_solution():
    """deep_total_map against Σ_α a_α(t) u_α v_αᵀ with a_α the derived solution (mpmath) on a
    task of five scalar sources, with and without a source (its Σ^{yx} column and Σ entry
    deleted by dlnfusion.interventions.delete), and per-mode a₀; aligned_params builds the
    ansatz (balanced, total map U diag(a₀) Vᵀ); half_times of a one-mode source against
    t½ = τ ln(s/a₀ − 1)/(2s); source_dynamics' deep half-way times against root-finding on
    the derived solution's source strength."""
    import mpmath as mp

    import dlnfusion as dln
    from dlnfusion import theory as th
    from dlnfusion.interventions import delete

    args, a = _paper_form()
    fa = sp.lambdify(args, a, "mpmath")
    S = np.array([[3, 1, 0, 0, 0], [1, 2, 0, 0, 0], [0, 0, 1.5, 0.6, 0.8], [0, 0, 0.6, 1, 2]],
                 float)
    full = dln.Stats.from_teacher(np.eye(5), S, dims=(1,) * 5)
    lr = 0.05
    tau = 1 / lr
    ts = np.array([0.0, 3.0, 30.0, 55.0, 400.0, 3e4])
    for task in (full, delete(full, "E")):
        U, s, Vt = np.linalg.svd(task.sigma_yx)
        r = int(np.sum(s > 1e-10 * s[0]))
        a0 = np.geomspace(1e-5, 1e-3, r)
        with mp.workdps(30):
            at = np.array([[float(fa(mp.mpf(t), tau, s[k], a0[k])) for k in range(r)]
                           for t in ts])
        want = np.einsum("tk,ik,jk->tij", at, U[:, :r], Vt[:r].T)
        _close_max(th.sources.deep_total_map(task, ts, a0, lr=1 / tau), want, RTOL_FLOAT, "deep_total_map")
        spec = dln.NetworkSpec.fusion(2, 1, width=6, input_dims=task.dims, output_dim=4)
        p = th.sources.aligned_params(spec, task, a0, seeds=[3])
        W1 = np.concatenate([b[0][0] for b in p.branches], axis=1)
        W2 = p.post[0][0]
        _close_max(W1 @ W1.T, W2.T @ W2, RTOL_FLOAT, "aligned_params balanced")
        _close_max(W2 @ W1, want[0], RTOL_FLOAT, "aligned_params total map")
    # A source that is one mode: source A of a diagonal task, a single crossing.
    diag = dln.Stats.from_teacher(np.eye(2), [[2.5, 0.0], [0.0, 0.7]], dims=(1, 1))
    s_a, a0 = 2.5, 1e-4
    t_half = tau * np.log(s_a / a0 - 1) / (2 * s_a)
    got = th.sources.half_times(lambda x: th.sources.source_strengths(th.sources.deep_total_map(diag, [x], a0, lr=1 / tau)[0],
                                                      diag), [2.5, 0.7], 1e4)
    _close(got, [t_half, tau * np.log(0.7 / a0 - 1) / 1.4], RTOL_ROOT, "half_times (one mode)")
    # source_dynamics: the half-way time of every source by bisection on the derived a_α(t).
    for off in (None, "E"):
        task = full if off is None else delete(full, off)
        dyn = th.source_dynamics(full, ts, 1e-4, lr=1 / tau, network="deep", disabled=off)
        U, s, Vt = np.linalg.svd(task.sigma_yx)
        r = int(np.sum(s > 1e-10 * s[0]))
        R = S / np.linalg.norm(S, axis=0)

        def strength(x, m):
            at = [fa(mp.mpf(x), tau, s[k], 1e-4) for k in range(r)]
            return sum(at[k] * float(U[:, k] @ R[:, m]) * Vt[k, m] for k in range(r))

        for m in range(5):
            if off is not None and m == 4:
                assert np.isnan(dyn.half_time[m]) and dyn.source_limit[m] == 0
                continue
            with mp.workdps(30):
                lim = strength(1e6, m)
                root = mp.findroot(lambda x: strength(x, m) - lim / 2, dyn.half_time[m])
            _close(dyn.half_time[m], float(root), RTOL_ROOT, f"deep half-way time of {m}")
            _close(dyn.source_limit[m], np.linalg.norm(S[:, m]), RTOL_FLOAT, "source limit")
    return True


def _shallow_solution():
    t, tau = _T
    d, sig, w0 = sp.symbols("d sigma w0", real=True)
    w = sp.Function("w")
    sol = sp.dsolve(sp.Eq(tau * w(t).diff(t), sig - d * w(t)), w(t), ics={w(0): w0})
    return (t, tau, d, sig, w0), sol.rhs


def derive_shallow_solution():
    """τ dW_jk/dt = −∂L/∂W_jk = Σ_yx,jk − d_k W_jk for diagonal Σ (no other entry appears);
    its solution is W* + (W(0) − W*)e^{−d t/τ}, W* = σ/d, which at d = 1 is the paper's
    Σ^{yx}(1 − e^{−t/τ}) + W(0)e^{−t/τ}; a disabled column (d = 0, σ = 0) keeps W(0). A
    source strength f∞ + (f0 − f∞)e^{−t/τ} passes f∞/2 at τ ln(2(f∞ − f0)/f∞)."""
    (t, tau, d, sig, w0), w = _shallow_solution()
    W = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"w_{i}{j}", real=True))
    Syx = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"S_{i}{j}", real=True))
    dd = sp.symbols("d_0:3", nonnegative=True)
    L = _loss(W, Syx, sp.diag(*dd))
    for i in range(2):
        for j in range(3):
            assert sp.expand(-sp.diff(L, W[i, j]) - (Syx[i, j] - dd[j] * W[i, j])) == 0
    assert sp.simplify(w - (sig / d + (w0 - sig / d) * sp.exp(-d * t / tau))) == 0
    paper = sig * (1 - sp.exp(-t / tau)) + w0 * sp.exp(-t / tau)
    assert sp.simplify(w.subs(d, 1) - paper) == 0
    assert (sig - d * w0).subs({d: 0, sig: 0}) == 0            # d = σ = 0: dW/dt = 0
    f0, finf = sp.symbols("f0 f_inf", positive=True)
    f = finf + (f0 - finf) * sp.exp(-t / tau)
    t_half = tau * sp.log(2 * (finf - f0) / finf)
    assert sp.simplify(f.subs(t, t_half) - finf / 2) == 0
    return True


def check_shallow_solution():
    """shallow_total_map against the dsolve solution entry by entry (d ∈ {1, 0.3, 0}; the
    d = 0 column of a deleted source keeps W(0)); source_dynamics' shallow half-way times
    against τ ln(2(f∞ − f0)/f∞) from the derived strength, with and without the source
    (the same values: the counterfactual of the paper's Fig. 2, right)."""
    import dlnfusion as dln
    from dlnfusion import theory as th
    from dlnfusion.interventions import delete

    args, w = _shallow_solution()
    fw = sp.lambdify(args, w, "mpmath")
    S = np.array([[1.0, -2.0, 0.0], [0.5, 0.3, 0.0]])
    yy = S @ np.diag([1, 1 / 0.3, 0]) @ S.T + 0.1 * np.eye(2)     # Σ_yx Σ⁺ Σ_xy + noise
    st = dln.Stats(np.diag([1.0, 0.3, 0.0]), S, yy, dims=(1, 1, 1), allow_singular=True)
    tau = 12.5
    ts = np.array([0.0, 1.0, 10.0, 100.0])
    W0 = np.array([[0.1, -0.2, 0.3], [0.0, 0.05, -0.4]])
    got = th.sources.shallow_total_map(st, ts, W0, lr=1 / tau)
    d = np.diag(st.sigma)
    want = np.empty_like(got)
    for n, t in enumerate(ts):
        for i in range(2):
            for j in range(3):
                want[n, i, j] = W0[i, j] if d[j] == 0 else \
                    float(fw(t, tau, d[j], S[i, j], W0[i, j]))
    _close_max(got, want, RTOL_FLOAT, "shallow_total_map")
    # Half-way times of the sources of a whitened task, with and without source C.
    St = np.array([[2.0, 0.5, -1.0], [0.0, 1.5, 0.7]])
    full = dln.Stats.from_teacher(np.eye(3), St, dims=(1, 1, 1))
    a0 = 1e-3
    W0 = th.sources.aligned_initial_map(full, a0)
    f0 = th.sources.source_strengths(W0, full)
    finf = np.linalg.norm(St, axis=0)
    want = tau * np.log(2 * (finf - f0) / finf)
    for off in (None, "C"):
        dyn = th.source_dynamics(full, ts, a0, lr=1 / tau, network="shallow", disabled=off)
        n = 3 if off is None else 2
        _close(dyn.half_time[:n], want[:n], RTOL_ROOT, f"shallow half-way times ({off})")
    assert delete(full, "C").sigma[2, 2] == 0
    return True


def derive_source_strength():
    """With Σ_yx = Σ_β s_β u_β v_βᵀ (UᵀU = I) and W = Σ_α a_α u_α v_αᵀ, the strength of the
    source made of input column k is ⟨W_k, Σ_yx,k⟩ = Σ_α a_α s_α V_kα²: non-negative weights
    (three scalar sources, two modes, _O3's columns as V)."""
    a = sp.symbols("a_1 a_2", real=True)
    s = sp.symbols("s_1 s_2", positive=True)
    V = _O3[:, 1:]
    Syx = _U * sp.diag(*s) * V.T
    W = _U * sp.diag(*a) * V.T
    for k in range(3):
        got = (W[:, k].T * Syx[:, k])[0, 0]
        assert sp.simplify(got - sum(a[i] * s[i] * V[k, i] ** 2 for i in range(2))) == 0
    return True


def check_source_strength():
    """source_strengths and mode_projections against the derived weights Σ_α a_α s_α V_kα²
    (divided by ‖Σ_yx,k‖) and a_α, for a map W = U diag(a) Vᵀ on a task's modes."""
    import dlnfusion as dln
    from dlnfusion import theory as th

    s_vals, a_vals = (2.0, 0.5), (0.7, -0.1)
    V = np.array(_O3[:, 1:], dtype=float)
    U = np.array(_U, dtype=float)
    Syx = U @ np.diag(s_vals) @ V.T
    st = dln.Stats.from_teacher(np.eye(3), Syx, dims=(1, 1, 1))
    W = U @ np.diag(a_vals) @ V.T
    want = [sum(a_vals[i] * s_vals[i] * V[k, i] ** 2 for i in range(2))
            / np.linalg.norm(Syx[:, k]) for k in range(3)]
    _close(th.sources.source_strengths(W[None], st)[0], want, RTOL_FLOAT, "source_strengths")
    # u_αᵀ W v_α does not depend on the SVD's sign choice (u and v flip together).
    _close(th.sources.mode_projections(W, st), a_vals, RTOL_FLOAT, "mode_projections")
    return True


def derive_all():
    return all([derive_time_unit(), derive_deep_reduction(), derive_deep_solution(),
                derive_shallow_solution(), derive_source_strength()])


def check_all():
    return all([check_deep_solution(), check_shallow_solution(), check_source_strength()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():
        print("sources:", derive_all(), "checked against dlnfusion:", check_all())
