"""Plain-numpy references of the balancing methods' rules, written from the papers' equations
(and, where the papers leave a choice, from the conventions stated in docs/corrections.md),
without importing dlnfusion's rule code. The tests compare dlnfusion.rules and the runs of
the reduced simulators with them, so that a wrong rule cannot hide behind the transforms and
the reduced simulators sharing it.

Everything is written for one evaluation at a time, with Python loops over modalities and
layers: slow and obvious on purpose.
"""
from __future__ import annotations

import math

import numpy as np


# ---------------------------------------------------------------------- OGM (Peng et al. 2022)
def ogm_coefficient(scores, alpha: float, continuous: bool = False) -> np.ndarray:
    """OGM's gradient scale k^u of each of two modalities u ∈ {0, 1} (Peng et al., CVPR 2022).

    ρ^u = s^u / s^{other}; the modality with ρ^u > 1 (it leads) gets
    k^u = 1 − tanh(α ρ^u) (the authors' current code) or 1 − tanh(α (ρ^u − 1)) (the paper's
    1 − tanh(α·ReLU(ρ^u − 1)), continuous at ρ = 1); the other gets 1. dlnfusion's population
    scores can be zero or negative: a modality whose score is not positive never leads, and
    against it a positive score's ratio is infinite (its coefficient 1 − tanh(∞) = 0 for
    α > 0; 1 for α = 0, where nothing is modulated)."""
    s = [float(v) for v in scores]
    if len(s) != 2:
        raise ValueError("OGM modulates two modalities")
    out = np.ones(2)
    for u in (0, 1):
        mine, other = s[u], s[1 - u]
        if mine <= 0:
            continue
        rho = math.inf if other <= 0 else mine / other
        if not rho > 1:
            continue
        x = rho - 1.0 if continuous else rho
        out[u] = 1.0 if alpha == 0 else 1.0 - math.tanh(alpha * x)
    return out


# ---------------------------------------------------------------------- InfoReg (Huang et al. 2025)
def performance_gaps(scores) -> np.ndarray:
    """Δ_m of eqs. (9)-(10): C_m = |{m' ≠ m : s_m' < s_m}| and
    Δ_m = (1/C_m) Σ_{m': s_m' < s_m} (s_m − s_m'), 0 for a modality nothing scores below."""
    s = [float(v) for v in scores]
    out = np.zeros(len(s))
    for m, sm in enumerate(s):
        below = [sm - sn for n, sn in enumerate(s) if n != m and sn < sm]
        if below:
            out[m] = sum(below) / len(below)
    return out


def in_window(traces, t: int, K: float, rule: str = "paper", average: int = 10) -> bool:
    """Whether epoch ``t`` lies in the prime learning window, from ``traces`` = [Tr F^0, …,
    Tr F^{t−1}] (the traces at the end of the epochs before it, one modality).

    "paper" (eq. 11): (Tr F^{t−1} − Tr F^{t−2}) / Tr F^{t−1} > K, tested from epoch 2 on
    (Algorithm 1 skips epochs 0 and 1). "moving_average" (the authors' code): the same rate
    of the ``average``-epoch means M^{t−1} = mean(Tr F^{t−average}, …, Tr F^{t−1}) and
    M^{t−2}, tested once both are full means (t ≥ average + 1). "outside": tested as "paper",
    True where the paper's test fails (the paper's Table 4 ablation). "always", "never"."""
    if rule == "always":
        return True
    if rule == "never":
        return False
    F = [float(v) for v in traces[:t]]
    if rule in ("paper", "outside"):
        if t < 2:
            return False
        new, old = F[t - 1], F[t - 2]
    elif rule == "moving_average":
        if t < average + 1:
            return False
        new = sum(F[t - average:t]) / average
        old = sum(F[t - 1 - average:t - 1]) / average
    else:
        raise ValueError(f"unknown rule {rule!r}")
    rate = (new - old) / new
    return rate <= K if rule == "outside" else rate > K


def regulation_strength(gap: float, beta: float, prefactor: float = 1.0) -> float:
    """α of eq. (16), α = exp(β tanh Δ_m), times a fixed prefactor c_m (the authors' code uses
    prefactors; the paper's is 1)."""
    return prefactor * math.exp(beta * math.tanh(gap))


def inforeg_step(scores, traces, t: int, *, K: float, beta: float, rule: str = "paper",
                 average: int = 10, prefactors=None):
    """Algorithm 1, lines 10-16, for one step in epoch ``t``: ``traces`` (t, M) the epoch
    traces Tr F^0 … Tr F^{t−1}; a modality is regulated when its gap is positive and it is
    in its window; returns (regulated (M,) bool, proximal coefficient (M,): α where regulated,
    0 elsewhere)."""
    gaps = performance_gaps(scores)
    M = gaps.size
    pref = np.ones(M) if prefactors is None else np.asarray(prefactors, float)
    traces = np.asarray(traces, float).reshape(-1, M) if t else np.zeros((0, M))
    regulated = np.zeros(M, bool)
    coef = np.zeros(M)
    for m in range(M):
        if gaps[m] > 0 and in_window(traces[:, m], t, K, rule, average):
            regulated[m] = True
            coef[m] = regulation_strength(gaps[m], beta, pref[m])
    return regulated, coef


# ---------------------------------------------------------------------- Tr F_m (eq. 7)
def _product(mats, n):
    P = np.eye(n)
    for W in mats:
        P = W @ P
    return P


def fisher_trace(branches, post, sigma, sigma_yx, sigma_yy, batch_size=None):
    """Tr F of every weight matrix and every branch of a linear fusion network, for zero-mean
    jointly Gaussian (x, y) with covariances ``sigma`` (Σ_xx), ``sigma_yx`` and ``sigma_yy``:
    E‖∇_W ℓ‖², ℓ = ½‖y − ŷ‖² per sample (eq. 7; ``batch_size`` b: E‖ḡ_b‖² of the mean gradient
    of b independent samples).

    ``branches`` [[W_m^1, …], …] (numpy matrices, input side first), ``post`` [V_1, …] the
    shared layers. Written independently of the library's closed form: the prediction is
    ŷ = A W_l B x for a layer W_l (A the product above it, B the one below, zero outside its
    modality's inputs), so its per-sample gradient is −Aᵀ e (B x)ᵀ with e = y − W x, and
    ‖∇‖² = zᵀ P z · zᵀ Q z for z = (e, x), P = blockdiag(A Aᵀ, 0), Q = blockdiag(0, Bᵀ B).
    For a zero-mean Gaussian z with covariance C (built here from the moments of (y, x) and
    e = y − W x), E[zᵀPz zᵀQz] = tr(PC) tr(QC) + 2 tr(PCQC); the mean gradient is −Aᵀ C_ex Bᵀ,
    and E‖ḡ_b‖² = ‖E g‖² + (E‖g‖² − ‖E g‖²)/b.

    Returns (per layer (n_layers,) in the order branches then post, per branch (M,))."""
    sigma = np.asarray(sigma, float)
    sigma_yx = np.asarray(sigma_yx, float)
    sigma_yy = np.asarray(sigma_yy, float)
    dims = [layers[0].shape[1] for layers in branches]
    D, d_out = sum(dims), sigma_yy.shape[0]
    h = branches[0][-1].shape[0]
    V = _product(post, h)
    blocks = [_product(layers, dims[m]) for m, layers in enumerate(branches)]
    W = V @ np.concatenate(blocks, axis=1)                           # the total map
    # covariance of z = (e, x), e = y − W x
    joint = np.block([[sigma_yy, sigma_yx], [sigma_yx.T, sigma]])   # of (y, x)
    L = np.block([[np.eye(d_out), -W], [np.zeros((D, d_out)), np.eye(D)]])
    C = L @ joint @ L.T

    def expectation(A, B):
        P = np.zeros((d_out + D, d_out + D))
        Q = np.zeros_like(P)
        P[:d_out, :d_out] = A @ A.T
        Q[d_out:, d_out:] = B.T @ B
        full = np.trace(P @ C) * np.trace(Q @ C) + 2.0 * np.trace(P @ C @ Q @ C)
        mean_grad = A.T @ C[:d_out, d_out:] @ B.T
        mean = float(np.sum(mean_grad ** 2))
        return full if batch_size is None else mean + (full - mean) / batch_size

    offsets = np.concatenate([[0], np.cumsum(dims)]).astype(int)
    per_layer, per_branch = [], []
    for m, layers in enumerate(branches):
        total = 0.0
        for l, Wl in enumerate(layers):
            A = V @ _product(layers[l + 1:], Wl.shape[0])
            below = _product(layers[:l], dims[m])
            B = np.zeros((below.shape[0], D))
            B[:, offsets[m]:offsets[m + 1]] = below
            value = expectation(A, B)
            per_layer.append(value)
            total += value
        per_branch.append(total)
    F = np.concatenate(blocks, axis=1)
    for j, Vj in enumerate(post):
        A = _product(post[j + 1:], Vj.shape[0])
        B = _product(post[:j], h) @ F
        per_layer.append(expectation(A, B))
    return np.array(per_layer), np.array(per_branch)


# ---------------------------------------------------------------------- a reduced run's rules
def population_scores(w, s, sigma_diag) -> np.ndarray:
    """dlnfusion's population score of scalar branches (docs/corrections.md, Huang et al.
    item 1): the loss reduction of branch m alone, s_m w_m − ½ Σ_mm w_m²."""
    w = np.asarray(w, float)
    return np.asarray(s, float) * w - 0.5 * np.asarray(sigma_diag, float) * w ** 2


def _method_step(n, w, tr, s, diag, method, epoch_traces, options):
    """(c, a) of step n of a reduced run from the reference rules; ``epoch_traces`` the list
    of Tr F^0 … of the epochs finished before step n."""
    M = w.size
    scores = population_scores(w, s, diag)
    c, a = np.ones(M), np.zeros(M)
    if method in ("ogm", "ogm_ge"):
        c = ogm_coefficient(scores, options.get("alpha", 0.8), options.get("continuous", False))
    if method == "inforeg":
        k = n // options.get("epoch", 10)
        _, a = inforeg_step(scores, np.array(epoch_traces[:k]), k,
                            K=options.get("K", 0.04), beta=options.get("beta", 0.9),
                            rule=options.get("window", "paper"),
                            average=options.get("average", 10),
                            prefactors=options.get("prefactors"))
    return c, a


def _moments(stats):
    S = np.asarray(stats.sigma, float)
    s = np.asarray(stats.sigma_yx, float).reshape(-1)
    w_star = np.linalg.solve(S, s)
    noise = max(float(np.asarray(stats.sigma_yy).reshape(())) - s @ w_star, 0.0)
    return S, s, np.diag(S), w_star, noise


def replay_two_layer(stats, lr, gram0, steps, method, unimodal=0.0, **options):
    """Gradient descent of a two-layer late-fusion network with scalar modalities, written on
    the Gram matrix G of each branch's [u, v, u_p, v_p] (the map theory/balancing.py derives:
    u' = u + η(c d v − a(u − u_p)), v' = v + η(c d u − a(v − v_p)), so G' = T G Tᵀ; the drive
    d = g + λ(s_m − Σ_mm w_m); OGM-GE's noise in mean field adds η²d²(G_vv, G_uu) to the
    diagonal while the modulation is on), with every step's c and a from the reference rules,
    the trace Tr F_m = (E[e²]Σ_mm + 2g_m²)(G_uu + G_vv) recorded at every step, and u_p, v_p
    refreshed at every epoch start. One run: ``gram0`` (M, 4, 4). Returns w (steps + 1, M)."""
    S, s, diag, w_star, noise = _moments(stats)
    G = np.array(gram0, float)
    M = s.size
    epoch = options.get("epoch", 10)
    refresh = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    ws, epoch_traces = [], []
    for n in range(steps + 1):
        w = G[:, 0, 1].copy()
        ws.append(w)
        if n == steps:
            break
        g = -S @ (w - w_star)
        ee = noise + (w - w_star) @ S @ (w - w_star)
        tr = (ee * diag + 2.0 * g ** 2) * (G[:, 0, 0] + G[:, 1, 1])
        if method == "inforeg" and n % epoch == 0:
            if n:
                epoch_traces.append(tr)
            G = np.array([refresh @ Gm @ refresh.T for Gm in G])
        c, a = _method_step(n, w, tr, s, diag, method, epoch_traces, options)
        d = g + unimodal * (s - diag * w)
        new = np.empty_like(G)
        for m in range(M):
            e, k = lr * a[m], lr * c[m] * d[m]
            T = np.array([[1 - e, k, e, 0], [k, 1 - e, 0, e], [0, 0, 1, 0], [0, 0, 0, 1]])
            new[m] = T @ G[m] @ T.T
            if method == "ogm_ge" and np.any(c < 1):
                new[m, 0, 0] += lr ** 2 * d[m] ** 2 * G[m, 1, 1]
                new[m, 1, 1] += lr ** 2 * d[m] ** 2 * G[m, 0, 0]
        G = new
    return np.array(ws)


def replay_deep(stats, depth, lr, u0, steps, method, fusion_layer=None, unimodal=0.0,
                **options):
    """The same for a deep fusion network from balanced aligned weights (the reduction of
    theory/balancing.py: one norm a_m per branch of L_f layers, one norm X for the P shared
    layers, w_m = sgn(s_m) a_m^{L_f} X^P; a_m' = a_m + η(c_m sgn_m d_m a_m^{L_f−1} X^P −
    α_m(a_m − a_p,m)), X' = X + η Σ_m sgn_m d_m a_m^{L_f} X^{P−1}; Tr F_m =
    (E[e²]Σ_mm + 2g_m²) L_f a_m^{2(L_f−1)} X^{2P}). One run. Returns w (steps + 1, M)."""
    S, s, diag, w_star, noise = _moments(stats)
    M = s.size
    Lf = depth if fusion_layer is None else fusion_layer
    P = depth - Lf
    sign = np.sign(s)
    a = np.broadcast_to(np.asarray(u0, float), (M,)).copy()
    X = float(np.sqrt(np.sum(a ** 2)))
    a_prev = a.copy()
    epoch = options.get("epoch", 10)
    ws, epoch_traces = [], []
    for n in range(steps + 1):
        w = sign * a ** Lf * X ** P
        ws.append(w)
        if n == steps:
            break
        g = -S @ (w - w_star)
        ee = noise + (w - w_star) @ S @ (w - w_star)
        tr = (ee * diag + 2.0 * g ** 2) * Lf * a ** (2 * (Lf - 1)) * X ** (2 * P)
        if method == "inforeg" and n % epoch == 0:
            if n:
                epoch_traces.append(tr)
            a_prev = a.copy()
        c, alpha = _method_step(n, w, tr, s, diag, method, epoch_traces, options)
        d = g + unimodal * (s - diag * w)
        a_new = a + lr * (c * sign * d * a ** (Lf - 1) * X ** P - alpha * (a - a_prev))
        if P:
            X = X + lr * float(np.sum(sign * d * a ** Lf)) * X ** (P - 1)
        a = a_new
    return np.array(ws)


def expected_method_state(w, trace, s, sigma_diag, method: str, *, epoch: int = 10,
                          alpha: float = 0.8, continuous: bool = False, beta: float = 0.9,
                          K: float = 0.04, window: str = "paper", average: int = 10,
                          prefactors=None):
    """What the methods' rules say a reduced run of population-level gradient descent must
    apply at every step n = 0 … T − 2, from its recorded total weights ``w`` (T, M) and traces
    ``trace`` (T, M): OGM's coefficient (``method`` "ogm" or "ogm_ge"; 1 otherwise) from the
    scores at step n, and InfoReg's flags and proximal coefficient ("inforeg"), an epoch being
    ``epoch`` steps and Tr F^j, the trace after epoch j, the trace recorded at step
    (j + 1)·epoch. Returns (coefficient, regulated, proximal), each (T − 1, M)."""
    w = np.asarray(w, float)
    trace = np.asarray(trace, float)
    T, M = w.shape
    coef = np.ones((T - 1, M))
    regulated = np.zeros((T - 1, M), bool)
    proximal = np.zeros((T - 1, M))
    for n in range(T - 1):
        scores = population_scores(w[n], s, sigma_diag)
        if method in ("ogm", "ogm_ge"):
            coef[n] = ogm_coefficient(scores, alpha, continuous)
        if method == "inforeg":
            k = n // epoch
            past = trace[[(j + 1) * epoch for j in range(k)]] if k else np.zeros((0, M))
            regulated[n], proximal[n] = inforeg_step(scores, past, k, K=K, beta=beta,
                                                     rule=window, average=average,
                                                     prefactors=prefactors)
    return coef, regulated, proximal
