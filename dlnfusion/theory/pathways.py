"""Multi-pathway deep linear networks: the exact per-mode dynamics and its gradient-flow solutions
(closed forms; the map (GD) and the flow (GF) iterated or integrated step by step are
:func:`dlnfusion.reduced.reduced_pathways`).

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
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize

from .. import checks
from ..interventions.schedule import Gate, Lesion

__all__ = ["pathways_closed_form", "SplitPrediction", "predicted_split", "split_limit",
           "small_init_split", "pathway_flow"]


# ------------------------------------------------------------------------------ validation
def _as_depths(depths):
    if isinstance(depths, (str, bytes)) or np.ndim(depths) != 1 or len(depths) == 0:
        raise ValueError(f"depths must be a non-empty 1-D sequence of positive integers (the "
                         f"number of weight matrices of each pathway), got {depths!r}")
    return tuple(checks.positive_int(f"depths[{i}]", d) for i, d in enumerate(depths))


def _as_depth(depth, name="depth"):
    return checks.positive_int(name, depth)


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
        raise ValueError(f"init (p0) must be a scalar, a ({P},) array (one value per pathway) or a "
                         f"({P}, {M}) array (per pathway and mode), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"init (p0) must be finite, got {a}")
    if positive and np.any(a <= 0):
        raise ValueError("init (p0) must be positive for this closed form (depth >= 3: it is written "
                         f"in p^(2-D)), got {a}")
    return np.array(a, dtype=float)


def _as_lr(lr):
    return checks.nonnegative("lr", lr)


def _as_steps(steps, name="steps"):
    return checks.nonnegative_int(name, steps)


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


def _window_pathway(name, i, group, P):
    """The pathway a window names: an index, or a branch name "a", "b", ... (pathway 0, 1, ...,
    as :func:`dlnfusion.init_pathways` names them)."""
    if isinstance(group, str):
        if len(group) != 1 or not group.isalpha():
            raise ValueError(f"{name}[{i}]: pathway {group!r} must be an index or a branch "
                             f"name 'a', 'b', ...")
        group = ord(group.lower()) - ord("a")
    return _pathway_index(name, i, group, P)


def _as_gates(gates, P):
    """Gate windows as rows (pathway, start, end): ``Gate(group, start, end)`` windows (the
    ones :func:`dlnfusion.train` takes, scalar start and end) or (pathway, start, end)
    tuples."""
    out = []
    for i, g in enumerate(gates):
        if isinstance(g, Gate):
            g = (_window_pathway("gates", i, g.group, P), g.start, g.end)
        if len(g) != 3:
            raise ValueError(f"gates[{i}] must be a Gate or (pathway, start, end), got {g!r}")
        q = _pathway_index("gates", i, g[0], P)
        out.append((q,) + _window("gates", i, g[1], g[2]))
    return np.array(out, dtype=float).reshape(-1, 3)


def _as_lesions(lesions, P, M):
    """Lesion windows as rows (pathway, mode, start, end): ``Lesion(group, mode=α, start, end)``
    windows (``end=None``: for good; unit lesions are not reduced) or (pathway, mode, start,
    end) tuples (``end=inf``: for good)."""
    out = []
    for i, l in enumerate(lesions):
        if isinstance(l, Lesion):
            if l.mode is None:
                raise ValueError(f"lesions[{i}]: the reduced pathways lesion modes "
                                 f"(Lesion(group, mode=α)), not units")
            l = (_window_pathway("lesions", i, l.group, P), l.mode, l.start,
                 np.inf if l.end is None else l.end)
        if len(l) != 4:
            raise ValueError(f"lesions[{i}] must be a Lesion or (pathway, mode, start, end), "
                             f"got {l!r}")
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


def pathways_closed_form(s, init, depth, lr, times, *, gates=()):
    """Gradient-flow mode strengths K_{q,α}(t) of two pathways of equal depth, piecewise exact.

    Symbols → arguments: s_α → ``s`` (M,); p_{q,α}(0) → ``init`` (scalar, (2,) or (2, M) per-layer
    values; positive for depth ≥ 3); D → ``depth``; η → ``lr``; t → ``times`` (steps, τ = 1/η);
    ``gates`` as in :func:`dlnfusion.reduced.reduced_pathways` (pathway 0 or 1, start, end),
    any number of windows.
    Pieces (module docstring; theory/pathways.py derives each):

    * D = 1: both train: K_a + K_b = s − (s − S₀)e^{−2ηt}, K_a − K_b constant; one trains:
      K = s' − (s' − K₀)e^{−ηt}, s' = s − K_other.
    * D = 2: both train: 1/S = e^{−2ηst}/S₀ + (1 − e^{−2ηst})/s, K_a/K_b constant; one trains:
      the same logistic towards s' = s − K_other.
    * D ≥ 3: u = p^{2−D}; both train: u_a − u_b constant and t = ∫ du_a/u̇_a; one trains:
      t = ∫ du/(−(D − 2)η(s' − u^{−D/(D−2)})). Quadratures (rtol 1e-13) inverted by brentq.

    Returns K of shape (len(times), 2, M). No lesions (use
    :func:`dlnfusion.reduced.reduced_pathways`).
    """
    p0 = init
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


def predicted_split(s, init, depth, lr, gate_start, gate_length, steps, gated=1) -> SplitPrediction:
    """Closed-form (piecewise) gradient-flow prediction of one gating window on one pathway.

    Two pathways of equal depth D = ``depth`` start from per-layer values ``init`` (scalar,
    (2,) or (2, M)); pathway ``gated`` (0 = a, 1 = b) receives no update during
    [gate_start, gate_start + gate_length) (steps; gate_length may be inf). Returns
    :class:`SplitPrediction`: K_a, K_b at t = ``steps`` (:func:`pathways_closed_form`) and the
    split as t → ∞ (:func:`split_limit` from the state after the gate; for a permanent gate
    the trained pathway's limit s − K_gated). Gradient flow with t in steps (τ = 1/η):
    gradient descent with step η deviates from it at O(ηs) (Kleinman et al. 2023).
    """
    p0 = init
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


def small_init_split(s, init, depth, lr, gate_start, gate_length, gated=1):
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
    (K_a(∞), K_b(∞)), each (M,). Raises ValueError unless ``lr`` is positive and finite.
    """
    p0 = init
    D = _as_depth(depth)
    if D < 3:
        raise ValueError(f"depth must be >= 3 for the small-initialization approximation "
                         f"(D = 1, 2: use predicted_split, which is exact), got {depth!r}")
    s = _as_s(s)
    if np.any(s <= 0):
        raise ValueError("s must be positive for the small-initialization approximation")
    p0 = np.broadcast_to(np.asarray(p0, dtype=float), s.shape)
    if not np.all(np.isfinite(p0)) or np.any(p0 <= 0):
        raise ValueError(f"init (p0) must be positive and finite, got {p0}")
    lr = checks.learning_rate(lr)      # nothing trains at lr = 0: there is no split to predict
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
