"""Multi-pathway deep linear networks: the exact per-mode dynamics and its gradient-flow solutions.

Setting (Kleinman, Achille, Soatto & Kao 2023, "Critical learning periods emerge even in deep
linear networks", arXiv 2308.12221, Figs. 2-3): P parallel linear pathways see the same input
and their outputs are summed, ŷ = Σ_q Ω_q x with Ω_q = W^{q}_{D_q} ⋯ W^{q}_1 (D_q weight
matrices). Loss ½ Σ_items ‖y − ŷ‖² (sum convention) with whitened input, X = I, so that Σ = I
and Σ_yx = Yᵀ = U S Vᵀ with the mode singular values s_α. With aligned, balanced weights every
layer of pathway q acts on mode α as the same scalar p_{q,α}, the pathway's end-to-end mode
strength is K_{q,α} = (Uᵀ Ω_q V)_{αα} = p_{q,α}^{D_q}, and full-batch gradient descent with
learning rate η is EXACTLY (theory/pathways.py derives it from the loss of the scalar chains
and of the matrices)

    p_{q,α} ← p_{q,α} + η p_{q,α}^{D_q − 1} (s_α − Σ_r K_{r,α}),                    (GD)

independently for every mode. Gradient flow, in the toolkit's time unit (t counts steps,
τ = 1/η), is dp/dt = η p^{D−1}(s − Σ_r K_r), i.e. for p > 0

    dK_q/dt = η D_q K_q^{2 − 2/D_q} (s − Σ_r K_r).                                   (GF)

Interventions, with windows [start, end) in steps (end may be inf):

* gating pathway q: its p is not updated while the step index n (GD) or the time t (GF) lies in
  the window; it still contributes to the output;
* lesion of mode α in pathway q: K_{q,α} is held at zero (p_{q,α} = 0) in the window. For
  D_q ≥ 2, p = 0 is a fixed point of the map, so in this balanced reduced model the mode stays
  at zero after the window too (D_q = 1 recovers). A full network lesioned by projecting only its
  first layer has the same K while the lesion lasts but keeps its other layers, so after a
  *temporary* lesion the two differ; a permanent one is exact.

Solutions of (GF) for two pathways of equal depth D (derived in theory/pathways.py):

* D = 1: while both train K_a − K_b is conserved and K_a + K_b → s as e^{−2ηt}; while b is
  gated K_a → s − K_b as e^{−ηt}.
* D = 2: while both train K_a/K_b is conserved and K_a + K_b is the logistic
  1/S(t) = e^{−2ηst}/S₀ + (1 − e^{−2ηst})/s; while b is gated K_a is the logistic towards
  s' = s − K_b, 1/K_a(t) = e^{−2ηs't}/K_a(0) + (1 − e^{−2ηs't})/s'.
* D ≥ 3 (p > 0): u_q = p_q^{2−D} obeys du_q/dt = −(D − 2)η(s − Σ K_r) for every training
  pathway, so u_a − u_b = C is conserved while both train; the final split solves
  K_a^{−(D−2)/D} − K_b^{−(D−2)/D} = C with K_a + K_b = s. Each phase is an autonomous 1-D
  flow in u, solved implicitly by t = ∫ du / u̇ (a quadrature inverted by root finding).
  Small initialization (p ≪ s^{1/D}): in the linear phase u falls at the constant rate
  (D − 2)ηs, so a gate of length T during it changes C by −(D − 2)ηsT; if the non-gated pathway
  escapes during the gate it takes everything but the gated pathway's K at the gate's start.

Units and conventions: every time (``steps``, window bounds, ``times``) counts gradient-descent
steps; ``lr`` is η; ``s`` are the mode singular values (M,); ``p0`` are per-layer initial values,
K₀ = p0^D.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize

from ..precision import float64

__all__ = ["PathwayRun", "reduced_pathways", "pathways_closed_form", "SplitPrediction",
           "predicted_split", "split_limit", "small_init_split", "pathway_flow",
           "PathwayPortrait", "pathway_portrait"]


# ------------------------------------------------------------------------------ validation
def _as_depths(depths):
    arr = np.atleast_1d(np.asarray(depths, dtype=object))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"depths must be a non-empty 1-D sequence of positive integers, got "
                         f"{depths!r}")
    out = []
    for i, d in enumerate(arr.tolist()):
        ok = (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) or \
             (isinstance(d, (float, np.floating)) and float(d).is_integer())
        if not ok or d < 1:
            raise ValueError(f"depths[{i}] must be a positive integer (number of weight "
                             f"matrices of pathway {i}), got {d!r}")
        out.append(int(d))
    return tuple(out)


def _as_depth(depth, name="depth"):
    ok = (isinstance(depth, (int, np.integer)) and not isinstance(depth, bool)) or \
         (isinstance(depth, (float, np.floating)) and float(depth).is_integer())
    if not ok or depth < 1:
        raise ValueError(f"{name} must be a positive integer (number of weight matrices), got "
                         f"{depth!r}")
    return int(depth)


def _as_s(s):
    s = np.atleast_1d(np.asarray(s, dtype=float))
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"s must be a non-empty 1-D array of mode singular values, got shape "
                         f"{s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"s must hold finite non-negative singular values, got {s}")
    return s


def _as_p0(p0, P, M, positive=False):
    a = np.asarray(p0, dtype=float)
    if a.ndim == 0:
        a = np.full((P, M), float(a))
    elif a.ndim == 1 and a.shape[0] == P:
        a = np.repeat(a[:, None], M, axis=1)
    elif a.shape != (P, M):
        raise ValueError(f"p0 must be a scalar, a ({P},) array (one value per pathway) or a "
                         f"({P}, {M}) array (per pathway and mode), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"p0 must be finite, got {a}")
    if positive and np.any(a <= 0):
        raise ValueError("p0 must be positive for this closed form (depth >= 3: it is written "
                         f"in p^(2-D)), got {a}")
    return np.array(a, dtype=float)


def _as_lr(lr):
    lr = float(lr)
    if not np.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a non-negative finite learning rate, got {lr!r}")
    return lr


def _as_steps(steps, name="steps"):
    ok = (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool)) or \
         (isinstance(steps, (float, np.floating)) and float(steps).is_integer())
    if not ok or steps < 0:
        raise ValueError(f"{name} must be a non-negative integer number of steps, got {steps!r}")
    return int(steps)


def _window(name, i, start, end):
    start, end = float(start), float(end)
    if not np.isfinite(start) or start < 0:
        raise ValueError(f"{name}[{i}]: window start must be finite and >= 0, got {start!r}")
    if np.isnan(end):
        raise ValueError(f"{name}[{i}]: window end is nan")
    if start > end:
        raise ValueError(f"{name}[{i}]: window start {start} > end {end}")
    return start, end


def _pathway_index(name, i, q, P):
    if isinstance(q, bool) or not float(q).is_integer() or not 0 <= int(q) < P:
        raise ValueError(f"{name}[{i}]: pathway index {q!r} out of range for {P} pathways")
    return int(q)


def _as_gates(gates, P):
    out = []
    for i, g in enumerate(gates):
        if len(g) != 3:
            raise ValueError(f"gates[{i}] must be (pathway, start, end), got {g!r}")
        q = _pathway_index("gates", i, g[0], P)
        out.append((q,) + _window("gates", i, g[1], g[2]))
    return np.array(out, dtype=float).reshape(-1, 3)


def _as_lesions(lesions, P, M):
    out = []
    for i, l in enumerate(lesions):
        if len(l) != 4:
            raise ValueError(f"lesions[{i}] must be (pathway, mode, start, end), got {l!r}")
        q = _pathway_index("lesions", i, l[0], P)
        a = l[1]
        if isinstance(a, bool) or not float(a).is_integer() or not 0 <= int(a) < M:
            raise ValueError(f"lesions[{i}]: lesion mode index {a!r} beyond the {M} modes "
                             f"(valid: 0..{M - 1})")
        out.append((q, int(a)) + _window("lesions", i, l[2], l[3]))
    return np.array(out, dtype=float).reshape(-1, 4)


def _gate_mask(gates, P, t):
    """(P,) bool: pathways gated at time t (windows [start, end))."""
    m = np.zeros(P, dtype=bool)
    for q, a, b in gates:
        if a <= t < b:
            m[int(q)] = True
    return m


def _lesion_mask(lesions, P, M, t):
    m = np.zeros((P, M), dtype=bool)
    for q, a, lo, hi in lesions:
        if lo <= t < hi:
            m[int(q), int(a)] = True
    return m


# -------------------------------------------------------------------------- reduced dynamics
class PathwayRun(NamedTuple):
    """Output of :func:`reduced_pathways`.

    ``time`` (R,) in steps; ``K`` (R, P, M) end-to-end mode strengths K_{q,α} = p^{D_q};
    ``p`` (R, P, M) the per-layer values.
    """

    time: np.ndarray
    K: np.ndarray
    p: np.ndarray


@lru_cache(maxsize=128)
def _gd_kernel(depths, n_chunks, every, rem):
    """Jitted GD map for static depths and record layout (n_chunks records of ``every`` steps,
    then ``rem`` more steps)."""
    import jax
    import jax.numpy as jnp

    P = len(depths)

    def pw(p, k):
        return jnp.stack([jnp.ones_like(p[q]) if depths[q] + k == 0
                          else jax.lax.integer_pow(p[q], depths[q] + k) for q in range(P)])

    def run(p0, s, lr, gates, lesions):
        qi = jnp.arange(P, dtype=p0.dtype)
        mi = jnp.arange(s.shape[0], dtype=p0.dtype)

        def gate_on(n):
            hit = (gates[:, 0:1] == qi[None, :]) & (gates[:, 1:2] <= n) & (n < gates[:, 2:3])
            return jnp.any(hit, axis=0)

        def lesion_on(n):
            hit = ((lesions[:, 0, None, None] == qi[None, :, None])
                   & (lesions[:, 1, None, None] == mi[None, None, :])
                   & (lesions[:, 2, None, None] <= n) & (n < lesions[:, 3, None, None]))
            return jnp.any(hit, axis=0)

        def step(n, p):
            n = n.astype(p.dtype)
            err = s - jnp.sum(pw(p, 0), axis=0)
            new = p + lr * (pw(p, -1) * err[None, :])
            new = jnp.where(gate_on(n)[:, None], p, new)
            return jnp.where(lesion_on(n + 1), jnp.zeros_like(new), new)

        p = jnp.where(lesion_on(jnp.asarray(0.0, p0.dtype)), jnp.zeros_like(p0), p0)

        def chunk(carry, _):
            p, n0 = carry
            p = jax.lax.fori_loop(0, every, lambda j, x: step(n0 + j, x), p)
            return (p, n0 + every), p

        (p_end, n_end), rec = jax.lax.scan(chunk, (p, jnp.asarray(0, jnp.int64)), None,
                                           length=n_chunks)
        if rem:
            p_last = jax.lax.fori_loop(0, rem, lambda j, x: step(n_end + j, x), p_end)
            rec = jnp.concatenate([rec, p_last[None]], axis=0)
        return jnp.concatenate([p[None], rec], axis=0)

    return jax.jit(run)


def _gf_numeric(s, p0, depths, lr, steps, times, gates, lesions, rtol=1e-12):
    """Gradient flow of the reduced dynamics, piecewise between window boundaries (LSODA)."""
    P, M = p0.shape
    bounds = {0.0, float(steps)}
    for w in list(gates[:, 1:]) + list(lesions[:, 2:]):
        for b in w:
            if 0 < b < steps:
                bounds.add(float(b))
    bounds = sorted(bounds)
    nz = np.abs(p0[p0 != 0])
    # Absolute tolerance far below the smallest initial value: every component is controlled
    # in relative terms (rtol), down to ~1e-3·rtol of its initial size.
    atol = 1e-3 * rtol * (float(nz.min()) if nz.size else 1.0)
    out = np.empty((len(times), P, M))
    dexp = np.array(depths, dtype=float)[:, None]
    dm1 = dexp - 1.0
    state = np.where(_lesion_mask(lesions, P, M, 0.0), 0.0, p0)
    for a, b in zip(bounds[:-1], bounds[1:]):
        state = np.where(_lesion_mask(lesions, P, M, a), 0.0, state)
        frozen = _gate_mask(gates, P, a)[:, None] | _lesion_mask(lesions, P, M, a)
        sel = (times >= a) & (times < b)
        if lr == 0 or frozen.all():
            out[sel] = state
            continue
        rate = lr * (~frozen).astype(float)

        def rhs(t, y, rate=rate):
            p = y.reshape(P, M)
            # integral float exponents: numpy's power is exact in sign for negative p
            err = s - np.sum(p ** dexp, axis=0)
            return (rate * p ** dm1 * err).ravel()

        def jac(t, y, rate=rate):
            # ∂ṗ_{qα}/∂p_{rα} = r_q[(D_q − 1)p_q^{D_q−2} e δ_qr − p_q^{D_q−1} D_r p_r^{D_r−1}];
            # modes do not couple.
            p = y.reshape(P, M)
            err = s - np.sum(p ** dexp, axis=0)
            own = np.where(dexp > 1, dm1 * p ** np.maximum(dexp - 2, 0.0), 0.0)
            dk = dexp * p ** dm1                                       # dK_r/dp_r
            J = np.zeros((P, M, P, M))
            for q in range(P):
                for r in range(P):
                    blk = -rate[q] * p[q] ** dm1[q] * dk[r]
                    if q == r:
                        blk = blk + rate[q] * own[q] * err
                    J[q, :, r, :] = np.diag(blk)
            return J.reshape(P * M, P * M)

        t_eval = np.concatenate([times[sel], [b]])
        # LSODA: Adams while the modes move, BDF in the stiff converged tails (a mode at its
        # fixed point relaxes at ~2ηD s^{2−2/D}, far faster than the slow escapes).
        sol = integrate.solve_ivp(rhs, (a, b), state.ravel(), method="LSODA", rtol=rtol,
                                  atol=atol, t_eval=t_eval, jac=jac)
        if not sol.success:
            raise RuntimeError(f"reduced_pathways(method='gf'): integration failed on "
                               f"[{a}, {b}]: {sol.message}")
        out[sel] = sol.y[:, :-1].T.reshape(-1, P, M)
        state = sol.y[:, -1].reshape(P, M)
    state = np.where(_lesion_mask(lesions, P, M, float(steps)), 0.0, state)
    out[times == steps] = state
    return out


def reduced_pathways(s, p0, depths, lr, steps, *, gates=(), lesions=(), method="gd",
                     record_every=1) -> PathwayRun:
    """Per-mode dynamics of P parallel balanced, aligned deep linear pathways.

    ``method="gd"`` iterates the exact gradient-descent map (Kleinman et al. 2023)

        p_{q,α}(n+1) = p_{q,α}(n) + η p_{q,α}(n)^{D_q − 1} (s_α − Σ_r p_{r,α}(n)^{D_r}),

    which is the full network's full-batch gradient descent on ½Σ‖y − ŷ‖² (sum convention,
    X = I) written in its SVD basis (theory/pathways.py). ``method="gf"`` integrates the
    gradient flow dp/dt = η p^{D−1}(s − Σ K) (t in steps, τ = 1/η) with LSODA (analytic
    Jacobian) at rtol 1e-12, piecewise so that every window boundary is hit exactly; it agrees
    with the closed forms to ~1e-10 relative.

    Symbols → arguments: s_α → ``s`` (M,); p_{q,α}(0) → ``p0`` (scalar, (P,) or (P, M); any
    sign); D_q → ``depths`` (P,) positive integers; η → ``lr``; number of steps → ``steps``.
    ``gates``: sequence of (pathway, start, end): the pathway's p is not updated for
    n ∈ [start, end) (GD: step n takes the state at n to n + 1; GF: t ∈ [start, end)).
    ``lesions``: sequence of (pathway, mode, start, end), end may be inf: p (so K) of that mode
    and pathway is zero at every time in [start, end); for D ≥ 2 it stays zero afterwards (p = 0
    is a fixed point). Records every ``record_every`` steps from 0, plus the last step.

    Returns :class:`PathwayRun` (time (R,), K (R, P, M), p (R, P, M)). Assumes whitened input
    (Σ = I) and exactly aligned, balanced weights; a diverging GD run (η s ≳ 1) returns inf/nan.
    """
    depths = _as_depths(depths)
    P = len(depths)
    s = _as_s(s)
    M = s.shape[0]
    p0 = _as_p0(p0, P, M)
    lr = _as_lr(lr)
    steps = _as_steps(steps)
    every = _as_steps(record_every, "record_every")
    if every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    gates = _as_gates(gates, P)
    lesions = _as_lesions(lesions, P, M)
    n_chunks, rem = divmod(steps, every)
    time = np.arange(n_chunks + 1, dtype=float) * every
    if rem:
        time = np.append(time, float(steps))
    if method == "gd":
        import jax.numpy as jnp

        with float64():
            fn = _gd_kernel(depths, n_chunks, every, rem)
            p = np.asarray(fn(jnp.asarray(p0), jnp.asarray(s), jnp.asarray(lr),
                              jnp.asarray(gates), jnp.asarray(lesions)))
    elif method == "gf":
        p = _gf_numeric(s, p0, depths, lr, steps, time, gates, lesions)
    else:
        raise ValueError(f"method must be 'gd' or 'gf', got {method!r}")
    K = np.stack([p[:, q] ** d for q, d in enumerate(depths)], axis=1)
    return PathwayRun(time, K, p)


# ------------------------------------------------------------- gradient-flow closed forms
def _relax(lam, t):
    """(1 − e^{−λt})/λ, with the limit t at λ = 0 (vectorised)."""
    lam = np.asarray(lam, dtype=float)
    x = lam * t
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, lam)
    with np.errstate(over="ignore", invalid="ignore"):
        full = -np.expm1(-x) / safe
    return np.where(small, t * (1.0 - x / 2.0), full)


def _logistic(K0, target, lr, t):
    """Solution of dK/dt = 2ηK(target − K) from K0 ≥ 0:
    1/K(t) = e^{−2η·target·t}/K0 + 2η·(1 − e^{−2η·target·t})/(2η·target)."""
    K0 = np.asarray(K0, dtype=float)
    lam = 2.0 * lr * np.asarray(target, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):
        inv = np.exp(-lam * t) / np.where(K0 > 0, K0, 1.0) + 2.0 * lr * _relax(lam, t)
        out = 1.0 / inv
    return np.where(K0 > 0, out, 0.0)


def _dK(y, d, gam):
    """(y + d)^{−γ} − y^{−γ} without cancellation."""
    return y ** (-gam) * np.expm1(-gam * np.log1p(d / y))


def _travel(d0, ys, c, gam, t):
    """d(t) for d' = c Σ_y [(y + d)^{−γ} − y^{−γ}] (the 1-D flow of u = p^{2−D} about its fixed
    point, d = u − u∞), from d(0) = d0: t = ∫ dv/κ(v) with d = ±e^v, κ = −c ΔK(d)/d > 0,
    inverted by root finding (κ is monotone between κ(v0) and κ∞, which brackets v)."""
    if d0 == 0.0 or t == 0.0:
        return d0
    sg = math.copysign(1.0, d0)
    v0 = math.log(abs(d0))

    def kappa(v):
        d = sg * math.exp(v)
        return -c * sum(_dK(y, d, gam) for y in ys) / d

    k_inf = c * gam * sum(y ** (-gam - 1.0) for y in ys)
    k0 = kappa(v0)
    v_floor = math.log(1e-17 * min(ys))  # beyond it d no longer changes any K in float64

    def T(v):
        return integrate.quad(lambda w: 1.0 / kappa(w), v, v0, epsabs=0.0, epsrel=1e-13,
                              limit=400)[0]

    if v0 <= v_floor:
        return d0 * math.exp(-k_inf * t)
    t_floor = T(v_floor)
    if t >= t_floor:
        return sg * math.exp(v_floor - k_inf * (t - t_floor))
    kmin, kmax = min(k0, k_inf), max(k0, k_inf)
    lo = max(v_floor, v0 - t * kmax * (1 + 1e-9) - 1e-12)
    hi = min(v0, v0 - t * kmin * (1 - 1e-9) + 1e-12)
    v = optimize.brentq(lambda w: T(w) - t, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps,
                        maxiter=200)
    return sg * math.exp(v)


def _deep_limit_scalar(Ka, Kb, s, D):
    """Final split (K_a, K_b) of both pathways training from (Ka, Kb) > 0, depth D ≥ 3:
    K_a^{−β} − K_b^{−β} = C (conserved), K_a + K_b = s, β = (D − 2)/D. Solved for the
    smaller share y = K_loser/s in log y, bracketed by (c + 2^β)^{−1/β} ≤ y ≤ (c + 1)^{−1/β}."""
    if s == 0:
        return 0.0, 0.0
    beta = (D - 2) / D
    C = Ka ** (-beta) - Kb ** (-beta)
    c = abs(C) * s ** beta
    if c == 0:
        return s / 2, s / 2

    def g(ell):
        y = math.exp(ell)
        return math.exp(-beta * ell) - (1.0 - y) ** (-beta) - c

    lo = -math.log(c + 2.0 ** beta) / beta
    hi = min(-math.log(c + 1.0) / beta, math.log(0.5))
    if g(hi) >= 0:
        ell = hi
    else:
        ell = optimize.brentq(g, lo - 1e-12, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    small = s * math.exp(ell)
    big = s - small
    return (small, big) if C > 0 else (big, small)


def _advance_deep(Ka, Kb, s, D, lr, t, train):
    """Exact gradient flow of one mode of two depth-D pathways (D ≥ 3, K > 0) over time t, with
    ``train`` = (a trains, b trains)."""
    if t == 0 or lr == 0 or not (train[0] or train[1]):
        return Ka, Kb
    beta, gam, c = (D - 2) / D, D / (D - 2), (D - 2) * lr
    if train[0] and train[1]:
        KaI, KbI = _deep_limit_scalar(Ka, Kb, s, D)
        if KaI == 0 and KbI == 0:  # s = 0: both decay, u_q' = c(K_a + K_b) > 0
            return _decay_pair(Ka, Kb, D, lr, t)
        ya, yb = KaI ** (-beta), KbI ** (-beta)
        # d = u_a − u_a∞ = u_b − u_b∞ (u_a − u_b is conserved), taken from the side with the
        # smaller u (the leader), whose difference carries the smaller absolute rounding.
        d0 = Ka ** (-beta) - ya if ya <= yb else Kb ** (-beta) - yb
        d = _travel(d0, (ya, yb), c, gam, t)
        return (KaI * math.exp(-gam * math.log1p(d / ya)),
                KbI * math.exp(-gam * math.log1p(d / yb)))
    i = 0 if train[0] else 1
    Ki, Ko = (Ka, Kb) if i == 0 else (Kb, Ka)
    target = s - Ko
    if target > 0:
        y = target ** (-beta)
        d = _travel(Ki ** (-beta) - y, (y,), c, gam, t)
        Ki = target * math.exp(-gam * math.log1p(d / y))
    else:  # no fixed point: u' = c (K + |s'|) > 0, K decays to 0
        Ki = _decay(Ki, -target, D, lr, t)
    return (Ki, Ko) if i == 0 else (Ko, Ki)


def _decay(K0, a, D, lr, t):
    """dK/dt = −η D K^{2−2/D}(K + a), a ≥ 0: u = K^{−β}, u' = c(u^{−γ} + a)."""
    beta, gam, c = (D - 2) / D, D / (D - 2), (D - 2) * lr
    u0 = K0 ** (-beta)
    if a == 0:
        return (u0 ** (gam + 1) + (gam + 1) * c * t) ** (-gam / (gam + 1))
    F = lambda u: c * (u ** (-gam) + a)  # noqa: E731
    T = lambda u: integrate.quad(lambda w: 1.0 / F(w), u0, u, epsabs=0.0,  # noqa: E731
                                 epsrel=1e-13, limit=400)[0]
    lo, hi = u0 + t * c * a, u0 + t * c * (K0 + a)
    u = optimize.brentq(lambda w: T(w) - t, lo * (1 - 1e-12), hi * (1 + 1e-12), xtol=0,
                        rtol=4 * np.finfo(float).eps)
    return u ** (-gam)


def _decay_pair(Ka, Kb, D, lr, t):  # s = 0 and both train: rare; integrate the 1-D flow
    beta = (D - 2) / D
    C = Ka ** (-beta) - Kb ** (-beta)
    sol = integrate.solve_ivp(
        lambda _, y: [(D - 2) * lr * (y[0] ** (-D / (D - 2)) + (y[0] - C) ** (-D / (D - 2)))],
        (0, t), [Ka ** (-beta)], method="DOP853", rtol=1e-13, atol=0)
    ua = sol.y[0, -1]
    return ua ** (-D / (D - 2)), (ua - C) ** (-D / (D - 2))


def _advance(Ka, Kb, s, D, lr, t, train):
    """Closed-form gradient flow of two depth-D pathways (all modes) over time t."""
    if t == 0 or lr == 0 or not (train[0] or train[1]):
        return Ka.copy(), Kb.copy()
    if train[0] and train[1]:
        S0 = Ka + Kb
        if D == 1:
            S = s - (s - S0) * np.exp(-2.0 * lr * t)
            return (S + Ka - Kb) / 2, (S - Ka + Kb) / 2
        if D == 2:
            S = _logistic(S0, s, lr, t)
            frac = np.where(S0 > 0, Ka / np.where(S0 > 0, S0, 1.0), 0.5)
            return S * frac, S * (1 - frac)
    elif D in (1, 2):
        i = 0 if train[0] else 1
        Ki, Ko = (Ka, Kb) if i == 0 else (Kb, Ka)
        target = s - Ko
        if D == 1:
            Ki = target - (target - Ki) * np.exp(-lr * t)
        else:
            Ki = _logistic(Ki, target, lr, t)
        return (Ki, Ko.copy()) if i == 0 else (Ko.copy(), Ki)
    out = [_advance_deep(float(a), float(b), float(sv), D, lr, t, train)
           for a, b, sv in zip(Ka, Kb, s)]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def _piecewise(s, K0a, K0b, D, lr, times, gates):
    """K_a, K_b at ``times`` (sorted or not) through the gate windows, by exact pieces."""
    times = np.asarray(times, dtype=float)
    order = np.argsort(times, kind="stable")
    bounds = sorted({0.0} | {float(b) for w in gates[:, 1:] for b in w if np.isfinite(b) and b > 0})
    out = np.empty((len(times), 2, s.shape[0]))
    Ka, Kb, t_state = K0a.copy(), K0b.copy(), 0.0
    for idx in order:
        t = times[idx]
        # advance the state through all boundaries below t
        while True:
            nxt = [b for b in bounds if t_state < b <= t]
            if not nxt:
                break
            b = nxt[0]
            frozen = _gate_mask(gates, 2, t_state)
            Ka, Kb = _advance(Ka, Kb, s, D, lr, b - t_state, (not frozen[0], not frozen[1]))
            t_state = b
        frozen = _gate_mask(gates, 2, t_state)
        ka, kb = _advance(Ka, Kb, s, D, lr, t - t_state, (not frozen[0], not frozen[1]))
        out[idx, 0], out[idx, 1] = ka, kb
    return out


def pathways_closed_form(s, p0, depth, lr, times, *, gates=()):
    """Gradient-flow mode strengths K_{q,α}(t) of two pathways of equal depth, piecewise exact.

    Symbols → arguments: s_α → ``s`` (M,); p_{q,α}(0) → ``p0`` (scalar, (2,) or (2, M) per-layer
    values; positive for depth ≥ 3); D → ``depth``; η → ``lr``; t → ``times`` (steps, τ = 1/η);
    ``gates`` as in :func:`reduced_pathways` (pathway 0 or 1, start, end), any number of windows.
    Pieces (module docstring; theory/pathways.py derives each):

    * D = 1: both train: K_a + K_b = s − (s − S₀)e^{−2ηt}, K_a − K_b constant; one trains:
      K = s' − (s' − K₀)e^{−ηt}, s' = s − K_other.
    * D = 2: both train: 1/S = e^{−2ηst}/S₀ + (1 − e^{−2ηst})/s, K_a/K_b constant; one trains:
      the same logistic towards s' = s − K_other.
    * D ≥ 3: u = p^{2−D}; both train: u_a − u_b constant and t = ∫ du_a/u̇_a; one trains:
      t = ∫ du/(−(D − 2)η(s' − u^{−D/(D−2)})). Quadratures (rtol 1e-13) inverted by brentq.

    Returns K of shape (len(times), 2, M). No lesions (use :func:`reduced_pathways`).
    """
    D = _as_depth(depth)
    s = _as_s(s)
    M = s.shape[0]
    p0 = _as_p0(p0, 2, M, positive=D >= 3)
    lr = _as_lr(lr)
    gates = _as_gates(gates, 2)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError(f"times must be finite and >= 0, got {times}")
    K0 = p0 ** D
    return _piecewise(s, K0[0], K0[1], D, lr, times, gates)


def split_limit(K_a, K_b, s, depth):
    """Final split (K_a(∞), K_b(∞)) of gradient flow when both pathways train from (K_a, K_b).

    D = 1: K_a − K_b conserved: ((s + Δ)/2, (s − Δ)/2). D = 2: K_a/K_b conserved:
    s·(K_a, K_b)/(K_a + K_b) (both zero: stays zero). D ≥ 3: p^{2−D} difference conserved,
    K_a^{−β} − K_b^{−β} = C with β = (D − 2)/D and K_a + K_b = s (unique root; K > 0 required).
    Arrays broadcast over modes; ``depth`` is the common depth D.
    """
    D = _as_depth(depth)
    s = _as_s(s)
    Ka = np.broadcast_to(np.asarray(K_a, dtype=float), s.shape).copy()
    Kb = np.broadcast_to(np.asarray(K_b, dtype=float), s.shape).copy()
    if not (np.all(np.isfinite(Ka)) and np.all(np.isfinite(Kb))):
        raise ValueError("K_a and K_b must be finite")
    if D == 1:
        d = Ka - Kb
        return (s + d) / 2, (s - d) / 2
    if np.any(Ka < 0) or np.any(Kb < 0):
        raise ValueError("K_a and K_b must be >= 0 for depth >= 2 (K = p^D with p > 0)")
    if D == 2:
        S = Ka + Kb
        ok = S > 0
        frac = np.where(ok, Ka / np.where(ok, S, 1.0), 0.0)
        return np.where(ok, s * frac, 0.0), np.where(ok, s * (1 - frac), 0.0)
    if np.any(Ka == 0) or np.any(Kb == 0):
        raise ValueError("K_a and K_b must be > 0 for depth >= 3 (u = K^{-(D-2)/D})")
    out = [_deep_limit_scalar(float(a), float(b), float(sv), D) for a, b, sv in zip(Ka, Kb, s)]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


class SplitPrediction(NamedTuple):
    """Gradient-flow prediction of one gating window: K per mode at ``steps`` (K_a, K_b) and
    the asymptotic split (K_a_inf, K_b_inf), every field of shape (M,)."""

    K_a: np.ndarray
    K_b: np.ndarray
    K_a_inf: np.ndarray
    K_b_inf: np.ndarray


def _check_gate(gate_start, gate_length, gated):
    gate_start, gate_length = float(gate_start), float(gate_length)
    if not np.isfinite(gate_start) or gate_start < 0:
        raise ValueError(f"gate_start must be finite and >= 0, got {gate_start!r}")
    if np.isnan(gate_length) or gate_length < 0:
        raise ValueError(f"gate_length must be >= 0 (window start > end otherwise), got "
                         f"{gate_length!r}")
    if gated not in (0, 1) or isinstance(gated, bool):
        raise ValueError(f"gated: pathway index {gated!r} out of range for 2 pathways")
    return gate_start, gate_length, int(gated)


def predicted_split(s, p0, depth, lr, gate_start, gate_length, steps, gated=1) -> SplitPrediction:
    """Closed-form (piecewise) gradient-flow prediction of one gating window on one pathway.

    Two pathways of equal depth D = ``depth`` start from per-layer values ``p0`` (scalar,
    (2,) or (2, M)); pathway ``gated`` (0 = a, 1 = b) receives no update during
    [gate_start, gate_start + gate_length) (steps; gate_length may be inf). Returns
    :class:`SplitPrediction`: K_a, K_b at t = ``steps`` (:func:`pathways_closed_form`) and the
    split as t → ∞ (:func:`split_limit` from the state after the gate; for a permanent gate
    the trained pathway's limit s − K_gated). Gradient flow with t in steps (τ = 1/η):
    gradient descent with step η deviates from it at O(ηs) (Kleinman et al. 2023).
    """
    D = _as_depth(depth)
    s = _as_s(s)
    M = s.shape[0]
    p0 = _as_p0(p0, 2, M, positive=D >= 3)
    lr = _as_lr(lr)
    steps = _as_steps(steps)
    t0, T, g = _check_gate(gate_start, gate_length, gated)
    gates = np.array([[g, t0, t0 + T]], dtype=float)
    K0 = p0 ** D
    at = _piecewise(s, K0[0], K0[1], D, lr, [float(steps)], gates)[0]
    if np.isfinite(t0 + T):
        end = _piecewise(s, K0[0], K0[1], D, lr, [max(float(steps), t0 + T)], gates)[0]
        if lr == 0:
            lim = end
        else:
            lim = np.array(split_limit(end[0], end[1], s, D))
    else:
        start = _piecewise(s, K0[0], K0[1], D, lr, [t0], gates)[0]
        lim = start.copy()
        if lr > 0:
            target = s - start[g]
            lim[1 - g] = np.where(target > 0, target, 0.0) if D >= 2 else target
            # D >= 2 with target <= 0 decays to 0; D = 1 reaches the target whatever its sign
            if D >= 2:
                lim[1 - g] = np.where(start[1 - g] > 0, lim[1 - g], 0.0)
    return SplitPrediction(at[0], at[1], lim[0], lim[1])


def small_init_split(s, p0, depth, lr, gate_start, gate_length, gated=1):
    """Small-initialization approximation of the final split after one gate, depth D ≥ 3.

    Both pathways start from the same per-layer value p0 > 0 (scalar or (M,)). In the linear
    phase (K ≪ s) the error is s and u = p^{2−D} falls at the constant rate r = (D − 2)ηs for
    each training pathway, from u₀ = p0^{2−D}:

    * the gate (on pathway ``gated``) starts with u(t₀) = u₀ − r t₀ for both; if that is below
      the symmetric fixed point (s/2)^{−β} (β = (D − 2)/D) the mode was learned before the gate
      and the split stays (s/2, s/2) (late gate: no effect);
    * during the gate the trained pathway reaches u_end = max(u(t₀) − rT, (s − K_g)^{−β}), with
      K_g = u(t₀)^{−D/(D−2)} the gated pathway's frozen value (the max: it escapes and saturates);
    * the final split solves the exact conservation law K_w^{−β} − K_g^{−β} = u_end − u(t₀),
      K_w + K_g = s (:func:`split_limit`). When the trained pathway escapes during the gate this
      gives K_g(∞) ≈ K_g(t₀): the pathway that escapes first takes almost everything.

    Accurate when p is small against s^{1/D} at the gate's start (u(t₀) ≫ s^{−β}), the regime of
    a sharp escape; inaccurate when the gate starts within the escape transition. Returns
    (K_a(∞), K_b(∞)), each (M,).
    """
    D = _as_depth(depth)
    if D < 3:
        raise ValueError(f"depth must be >= 3 for the small-initialization approximation "
                         f"(D = 1, 2: use predicted_split, which is exact), got {depth!r}")
    s = _as_s(s)
    if np.any(s <= 0):
        raise ValueError("s must be positive for the small-initialization approximation")
    p0 = np.broadcast_to(np.asarray(p0, dtype=float), s.shape)
    if not np.all(np.isfinite(p0)) or np.any(p0 <= 0):
        raise ValueError(f"p0 must be positive and finite, got {p0}")
    lr = _as_lr(lr)
    t0, T, g = _check_gate(gate_start, gate_length, gated)
    beta, gam = (D - 2) / D, D / (D - 2)
    r = (D - 2) * lr * s
    u0 = p0 ** (2 - D)
    ut0 = u0 - r * t0
    learned = ut0 <= (s / 2) ** (-beta)
    ut0 = np.where(learned, (s / 2) ** (-beta), ut0)
    Kg = ut0 ** (-gam)
    sat = (s - Kg) ** (-beta)  # K_g <= s/2 here, so the saturated value is finite
    u_end = np.maximum(ut0 - r * T, sat) if np.isfinite(T) else sat
    Kw_end = u_end ** (-gam)
    Kw, Kg_inf = split_limit(Kw_end, Kg, s, D)
    Kw, Kg_inf = np.where(learned, s / 2, Kw), np.where(learned, s / 2, Kg_inf)
    return (Kw, Kg_inf) if g == 1 else (Kg_inf, Kw)


# ------------------------------------------------------------------------ phase portraits
def pathway_flow(K_a, K_b, s, depth, gated=None):
    """Vector field (dK_a/dt, dK_b/dt)/η of two pathways in the (K_a, K_b) plane.

    dK_q/dt = η D_q K_q^{2 − 2/D_q}(s − K_a − K_b) (K = p^D with p > 0; D = 1: η(s − K_a − K_b)),
    per unit η (multiply by ``lr`` for steps as time unit). ``K_a``, ``K_b`` broadcast (e.g. a
    meshgrid); ``depth`` an integer or (D_a, D_b); ``gated`` None, 0 or 1: that pathway's
    component is zero (frozen). The fixed points with both training form the solution line
    K_a + K_b = s.
    """
    if np.ndim(depth) == 0:
        Da = Db = _as_depth(depth)
    else:
        Da, Db = _as_depths(depth) if len(depth) == 2 else (None, None)
        if Da is None:
            raise ValueError(f"depth must be an integer or a pair (D_a, D_b), got {depth!r}")
    s = float(s)
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"s must be a finite non-negative singular value, got {s!r}")
    if gated is not None and (isinstance(gated, bool) or gated not in (0, 1)):
        raise ValueError(f"gated: pathway index {gated!r} out of range for 2 pathways")
    Ka, Kb = np.broadcast_arrays(np.asarray(K_a, dtype=float), np.asarray(K_b, dtype=float))
    for name, K, D in (("K_a", Ka, Da), ("K_b", Kb, Db)):
        if D >= 2 and np.any(K < 0):
            raise ValueError(f"{name} must be >= 0 for depth >= 2 (K = p^D with p > 0)")
    err = s - Ka - Kb
    fa = Da * Ka ** (2.0 - 2.0 / Da) * err
    fb = Db * Kb ** (2.0 - 2.0 / Db) * err
    if gated == 0:
        fa = np.zeros_like(fa)
    elif gated == 1:
        fb = np.zeros_like(fb)
    return fa, fb


def _half_time(s, K0, D, lr):
    """Gradient-flow time at which two equal pathways from K0 each reach s/4 (sum s/2)."""
    if D == 1:
        return math.log((s - 2 * K0) / (s / 2)) / (2 * lr)
    if D == 2:
        return math.log(s / (2 * K0) - 1) / (2 * lr * s)
    beta, gam = (D - 2) / D, D / (D - 2)
    # u' = −(D − 2)η(s − 2u^{−γ}) from u0 = K0^{−β} to u = (s/4)^{−β}
    return integrate.quad(lambda u: 1.0 / ((D - 2) * lr * (s - 2 * u ** (-gam))),
                          (s / 4) ** (-beta), K0 ** (-beta), epsabs=0, epsrel=1e-12,
                          limit=400)[0]


class PathwayPortrait(NamedTuple):
    """Trajectories for :func:`pathway_portrait` in the (K_a, K_b) plane.

    ``line`` (n, 2) the solution line K_a + K_b = s; ``time_early``/``K_early`` (R,), (R, 2) the
    run with pathway b gated during ``early_gate`` = (start, end); likewise ``*_late``;
    ``t_half`` the ungated half-learning time (steps) that sets the windows.
    """

    depth: int
    s: float
    line: np.ndarray
    time_early: np.ndarray
    K_early: np.ndarray
    early_gate: tuple
    time_late: np.ndarray
    K_late: np.ndarray
    late_gate: tuple
    t_half: float


def pathway_portrait(depth, s=10.0, p0=0.005, lr=0.01, *, n_points=400, n_line=101):
    """Gradient-flow trajectories of an early and a late deficit for a phase portrait.

    The spec's portrait setting: one mode s = 10, two pathways of depth D (2, 3, 4 in the
    paper's figure), per-layer p0 = 0.005, η = 0.01 (time in steps). With t½ the time at which
    the ungated pair reaches K_a + K_b = s/2 (theory, :func:`_half_time`), pathway b is gated
    during [0, t½) (early) or [2t½, 3t½) (late); both runs last 4t½, solved by
    :func:`reduced_pathways` with method "gf" (the theory's ODE, no simulation of a network).
    The early run ends near the K_a axis (winner-take-all), the late one on the diagonal.
    """
    D = _as_depth(depth)
    s = float(s)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"s must be positive and finite, got {s!r}")
    p0 = float(p0)
    if not np.isfinite(p0) or p0 <= 0:
        raise ValueError(f"p0 must be positive and finite, got {p0!r}")
    lr = _as_lr(lr)
    if lr == 0:
        raise ValueError("lr must be positive for a portrait (nothing moves at lr = 0)")
    if 2 * p0 ** D >= s / 2:
        raise ValueError("p0 is too large: the pair starts beyond half the target")
    th = _half_time(s, p0 ** D, D, lr)
    steps = int(math.ceil(4 * th))
    every = max(1, steps // int(n_points))
    early, late = (0.0, th), (2 * th, 3 * th)
    runs = [reduced_pathways([s], p0, (D, D), lr, steps, gates=[(1,) + w], method="gf",
                             record_every=every) for w in (early, late)]
    ka = np.linspace(0.0, s, int(n_line))
    line = np.stack([ka, s - ka], axis=1)
    return PathwayPortrait(D, s, line, runs[0].time, runs[0].K[:, :, 0], early, runs[1].time,
                           runs[1].K[:, :, 0], late, th)
