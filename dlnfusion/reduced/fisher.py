"""The information amount Tr F_m = E‖∇_{θ_m} ℓ‖² (Huang et al., CVPR 2025, eq. 7) of a
late-fusion linear network trained by gradient descent, along its mode solution: the exact
(two layers) or balanced-aligned (deeper) map of every branch iterated step by step
(:func:`fisher_late_fusion`). The closed form of Tr F_m for given weights is
:func:`dlnfusion.rules.fisher_trace`.

Along the mode solution (late fusion, scalar modalities, scalar output). Branch m is a chain
of L matrices whose product is the scalar w_m. With g_m = E[x_m e] = s_m − Σ_n Σ_mn w_n (s_m
= Σ_yx_m), ℓ's gradient makes each branch a chain driven by g_m:

* two layers (W_m^1 = u, W_m^2 = vᵀ): ‖∇ℓ‖² summed over both = e² x_m² (‖u‖² + ‖v‖²), so
  Tr F_m = E[e² x_m²] p_m with p_m = ‖u‖² + ‖v‖²; gradient descent maps
  (w, p) → (w + η p g + η² w g², p + 4η w g + η² p g²) exactly, for any initial weights
  (u' = u + η g v, v' = v + η g u), so w_m(t) and p_m(t) follow from (w_m(0), p_m(0)) alone;
* L ≥ 3 layers, balanced and aligned (every layer of norm a, w = a^L): a → a + η a^{L−1} g
  per step and Σ_l ‖A_l‖²‖B_l‖² = L a^{2(L−1)}, so Tr F_m = E[e² x_m²] L |w_m|^{2−2/L}. This
  is the mode solution; it ignores the components of random initial weights outside the
  growing mode (they dominate the norms until the mode has grown above them).

E[e² x_m²] = E[e²] Σ_mm + 2 g_m² (Isserlis again). :func:`fisher_late_fusion` iterates these
maps (gradient descent at learning rate η; one step of the map is one step of training).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from ..precision import float64
from ..results import Run, Status
from ..theory.fisher import _toy_moments

__all__ = ["FisherRun", "fisher_late_fusion"]


@dataclass(frozen=True, eq=False)
class FisherRun(Run):
    """Tr F_m(t) of a late-fusion network along its mode solution (:func:`fisher_late_fusion`):
    one run (batch shape ()).

    ``time`` (T,) the recorded steps; ``w`` (T, M) the total weight of each branch; ``norms``
    (T, M) the weight factor Σ_l ‖A_l‖²‖B_l‖² of each branch; ``trace`` (T, M) Tr F_m; ``loss``
    (T,); ``status`` () a :class:`~dlnfusion.results.Status` code: DIVERGED where a record is
    not finite (the map is not frozen: later records are inf or nan), MAX_STEPS otherwise.
    """

    time: np.ndarray
    w: np.ndarray
    norms: np.ndarray
    trace: np.ndarray
    loss: np.ndarray
    status: np.ndarray


def fisher_late_fusion(stats, depth: int, lr: float, init, steps: int, init_norms=None,
                       record_every: int = 1) -> FisherRun:
    """Tr F_m(t) of a late-fusion linear network (every branch ``depth`` layers, scalar
    modalities, scalar output) trained by gradient descent at learning rate ``lr``, from the
    mode solution (module docstring): iterate the exact (depth 2) or balanced-aligned
    (depth ≥ 3) map of every branch's total weight w_m, the branches coupled through
    g_m = s_m − Σ_n Σ_mn w_n.

    ``init`` the initial total weight of each branch along its growing mode (one value per
    modality, e.g. :func:`dlnfusion.theory.effective_init`, or the product of aligned initial
    weights); for depth 2 ``init_norms`` the initial ‖W_m^1‖² + ‖W_m^2‖² of each branch (default
    2|w0|: balanced and aligned). Records every ``record_every`` steps up to ``steps``.
    """
    p0 = init_norms
    w0 = init
    depth = checks.integer("depth", depth, 2, "an integer >= 2 (late fusion)")
    lr = checks.learning_rate(lr)
    steps = checks.positive_int("steps", steps)
    record_every = checks.positive_int("record_every", record_every)
    S, s, syy = _toy_moments(stats)
    M = len(s)
    w0 = np.broadcast_to(np.asarray(w0, float), (M,)).copy()
    L = int(depth)
    if not np.all(np.isfinite(w0)) or (L > 2 and np.any(w0 <= 0)):
        raise ValueError(f"init must be finite (and positive for depth >= 3: the balanced "
                         f"chain of the growing mode), got {w0}")
    if p0 is None:
        p0 = 2.0 * np.abs(w0)
    elif L != 2:
        raise ValueError("p0 (the initial sum of squared norms) is used by depth 2 only")
    p0 = np.broadcast_to(np.asarray(p0, float), (M,)).copy()
    if np.any(p0 < 2 * np.abs(w0) * (1 - 1e-12)):
        raise ValueError("init_norms must be at least 2|init| (‖u‖² + ‖v‖² >= 2|u·v|)")
    n_rec = steps // record_every + 1

    w_star = np.linalg.pinv(S) @ s
    noise = max(syy - s @ w_star, 0.0)

    def moments(w):
        dev = w - w_star                                # written around W* (precision)
        return -S @ dev, noise + dev @ S @ dev          # E[x_m e], E[e²]

    def factor(w, p):
        if L == 2:
            return p
        return L * jnp.abs(w) ** (2.0 - 2.0 / L)

    def step(state, _):
        w, p = state
        g, _ = moments(w)
        if L == 2:
            return (w + lr * p * g + lr ** 2 * w * g ** 2,
                    p + 4.0 * lr * w * g + lr ** 2 * p * g ** 2), None
        a = w ** (1.0 / L)                             # every layer of norm a, w = a^L > 0
        return ((a + lr * a ** (L - 1) * g) ** L, p), None

    def block(state, _):
        state, _ = jax.lax.scan(step, state, None, length=record_every)
        return state, state

    with float64():
        init = (jnp.asarray(w0), jnp.asarray(p0))
        _, (ws, ps) = jax.lax.scan(block, init, None, length=n_rec - 1)
        ws = jnp.concatenate([init[0][None], ws])
        ps = jnp.concatenate([init[1][None], ps])
        g, ee = jax.vmap(moments)(ws)
        ex2 = ee[:, None] * jnp.diag(S)[None] + 2.0 * g ** 2
        fac = jax.vmap(factor)(ws, ps)
        w, fac, tr, loss = (np.asarray(ws), np.asarray(fac), np.asarray(ex2 * fac),
                            0.5 * np.asarray(ee))
    finite = all(np.all(np.isfinite(a)) for a in (w, fac, tr, loss))
    status = np.asarray(np.int8(Status.MAX_STEPS if finite else Status.DIVERGED))
    return FisherRun(np.arange(n_rec, dtype=float) * record_every, w, fac, tr, loss, status)
