"""Multi-pathway deep linear networks (Kleinman, Achille, Soatto & Kao 2023): the exact
per-mode gradient-descent map iterated step by step, and its gradient flow integrated
numerically (:func:`reduced_pathways`), and the trajectories of a phase portrait
(:func:`pathway_portrait`).

The model, the map (GD) and the flow (GF), the interventions (gates, lesions) and the closed
forms of the flow are described in :mod:`dlnfusion.theory.pathways`: P parallel pathways of
balanced, aligned layers on whitened input, every layer of pathway q acting on mode α as the
scalar p_{q,α}, with end-to-end mode strength K_{q,α} = p_{q,α}^{D_q}. Units: every time
counts gradient-descent steps; ``lr`` is η.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import integrate

from ..precision import float64
from ..results import Run, Status
from ..theory.pathways import (_as_depth, _as_depths, _as_gates, _as_lesions, _as_lr, _as_p0,
                               _as_s, _as_steps, _gate_mask, _half_time, _lesion_mask)

__all__ = ["PathwayRun", "reduced_pathways", "PathwayPortrait", "pathway_portrait"]


@dataclass(frozen=True, eq=False)
class PathwayRun(Run):
    """Output of :func:`reduced_pathways`: one run (batch shape ()).

    ``time`` (R,) the recorded steps; ``K`` (R, P, M) end-to-end mode strengths
    K_{q,α} = p^{D_q}; ``p`` (R, P, M) the per-layer values; ``status`` () a
    :class:`~dlnfusion.results.Status` code: DIVERGED where a record is not finite (gradient
    descent with η s ≳ 1; the map is not frozen, so the records after it are inf or nan),
    MAX_STEPS otherwise (the map has no stopping rule).
    """

    time: np.ndarray
    K: np.ndarray
    p: np.ndarray
    status: np.ndarray


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


def reduced_pathways(s, init, depths, lr, steps, *, gates=(), lesions=(), method="gd",
                     record_every=1) -> PathwayRun:
    """Per-mode dynamics of P parallel balanced, aligned deep linear pathways.

    ``method="gd"`` iterates the exact gradient-descent map (Kleinman et al. 2023)

        p_{q,α}(n+1) = p_{q,α}(n) + η p_{q,α}(n)^{D_q − 1} (s_α − Σ_r p_{r,α}(n)^{D_r}),

    which is the full network's full-batch gradient descent on ½Σ‖y − ŷ‖² (sum convention,
    X = I) written in its SVD basis (theory/pathways.py). ``method="gf"`` integrates the
    gradient flow dp/dt = η p^{D−1}(s − Σ K) (t in steps, τ = 1/η) with LSODA (analytic
    Jacobian) at rtol 1e-12, piecewise so that every window boundary is hit exactly; it agrees
    with the closed forms to ~1e-10 relative.

    Symbols → arguments: s_α → ``s`` (M,); p_{q,α}(0) → ``init`` (scalar, (P,) or (P, M); any
    sign); D_q → ``depths`` (P,) positive integers; η → ``lr``; number of steps → ``steps``.
    ``gates``: the same ``Gate`` windows as :func:`dlnfusion.train` (group: a pathway index or
    its branch name "a", "b", ...), or (pathway, start, end) tuples: the pathway's p is not
    updated for n ∈ [start, end) (GD: step n takes the state at n to n + 1; GF: t ∈ [start,
    end)). ``lesions``: ``Lesion(group, mode=α, start, end)`` windows (``end=None``: for good)
    or (pathway, mode, start, end) tuples, end may be inf: p (so K) of that mode
    and pathway is zero at every time in [start, end); for D ≥ 2 it stays zero afterwards (p = 0
    is a fixed point). Records every ``record_every`` steps from 0, plus the last step.

    Returns :class:`PathwayRun` (time (R,), K (R, P, M), p (R, P, M), status). Assumes whitened
    input (Σ = I) and exactly aligned, balanced weights; a diverging GD run (η s ≳ 1) records
    inf/nan and has status DIVERGED.
    """
    p0 = init
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
    with np.errstate(over="ignore", invalid="ignore"):     # a diverged run is data
        K = np.stack([p[:, q] ** d for q, d in enumerate(depths)], axis=1)
    status = np.int8(Status.MAX_STEPS if np.all(np.isfinite(p)) and np.all(np.isfinite(K))
                     else Status.DIVERGED)
    return PathwayRun(time, K, p, np.asarray(status))


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


def pathway_portrait(depth, s=10.0, init=0.005, lr=0.01, *, n_points=400, n_line=101):
    """Gradient-flow trajectories of an early and a late deficit for a phase portrait.

    The spec's portrait setting: one mode s = 10, two pathways of depth D (2, 3, 4 in the
    paper's figure), per-layer p0 = 0.005, η = 0.01 (time in steps). With t½ the time at which
    the ungated pair reaches K_a + K_b = s/2 (a closed form of :mod:`dlnfusion.theory.pathways`),
    pathway b is gated during [0, t½) (early) or [2t½, 3t½) (late); both runs last 4t½, solved
    by :func:`reduced_pathways` with method "gf" (the theory's ODE, no simulation of a
    network).
    The early run ends near the K_a axis (winner-take-all), the late one on the diagonal.
    """
    p0 = init
    D = _as_depth(depth)
    s = float(s)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"s must be positive and finite, got {s!r}")
    p0 = float(p0)
    if not np.isfinite(p0) or p0 <= 0:
        raise ValueError(f"init (p0) must be positive and finite, got {p0!r}")
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
