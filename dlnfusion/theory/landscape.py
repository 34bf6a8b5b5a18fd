"""Fixed points, saddles and modality preference of fusion networks.

Setting the gradients of eqs. (3)–(5) to zero gives, for any depth and any fusion layer
2 ≤ L_f ≤ L (Zhang et al. 2024, eqs. 6, 7, 19, 20):

* M_0 = {W = 0}: all total maps zero (a saddle of the loss: unstable);
* M_* = {W^tot = Σ_yx Σ^{-1}}: the global minimum (stable);
* M_m = {W_m^tot = Σ_yx_m Σ_m^{-1}, W_n^tot = 0 for n ≠ m}: modality m alone learned — a saddle
  that exists only when fusion is not early (L_f ≥ 2).

Early fusion (L_f = 1) has only M_0 and M_* (Appendix C). Losses on the manifolds use the
training loss ½⟨‖y − ŷ‖²⟩. Note on eq. (62): the paper writes ⟨(y − ŷ)²⟩ there, without the
factor ½ of the training loss; the comparison in eq. (61) is unaffected, but the plateau value
of the training loss on M_m is ½(⟨y²⟩ − Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


__all__ = ["Manifold", "fixed_points", "saddle_loss", "superficial_preference",
           "preference_regions", "reduced_flow", "Curvature", "minimum_curvature"]


@dataclass(frozen=True)
class Manifold:
    """One manifold of fixed points: its name, total map, loss and stability."""

    name: str
    total_map: np.ndarray  # (d_out, D), all modalities
    loss: float
    stable: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "total_map": self.total_map.tolist(), "loss": self.loss,
                "stable": self.stable}


def saddle_loss(stats, m) -> float:
    """Training loss on M_m: ½(tr Σ_yy − tr Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ) (eq. 62 with the ½)."""
    i = stats.index(m)
    U = stats.unimodal_solution(i)
    return float(0.5 * (np.trace(stats.sigma_yy) - np.trace(U @ stats.sigma_yx_m(i).T)))


def fixed_points(stats, fusion_layer: int = 2) -> dict:
    """The manifolds M_0, M_*, and (for L_f ≥ 2) one saddle M_m per modality.

    Returns a dict name → :class:`Manifold`, names "M_0", "M_*" and "M_A", "M_B", ....
    """
    if not isinstance(fusion_layer, (int, np.integer)) or fusion_layer < 1:
        raise ValueError(f"fusion_layer must be a positive integer, got {fusion_layer!r}")
    D, d_out = stats.input_dim, stats.output_dim
    out = {
        "M_0": Manifold("M_0", np.zeros((d_out, D)), 0.5 * stats.mean_sq_output, False),
        "M_*": Manifold("M_*", stats.global_solution(), stats.min_loss(), True),
    }
    if fusion_layer >= 2:
        for i, name in enumerate(stats.names):
            W = np.zeros((d_out, D))
            W[:, stats.slices[i]] = stats.unimodal_solution(i)
            out[f"M_{name}"] = Manifold(f"M_{name}", W, saddle_loss(stats, i), False)
    return out


def superficial_preference(stats) -> dict:
    """Which modality a late/intermediate fusion network learns first, and whether it is the
    one that reduces the loss more (Section 3.4, eqs. 10–11).

    The first-learned modality is the one with the larger ‖Σ_yx_m‖ (eq. 28); its contribution
    is Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ, the loss drop of visiting M_m (eq. 62). The preference is
    *superficial* when these disagree (eqs. 10a and 10b hold with the roles of A and B chosen
    by the speeds). Returns a dict with the speeds, contributions, plateau losses, the name of
    the first modality, the name of the larger contributor and the flag ``superficial``.
    Requires exactly two modalities; a tie in speed is reported as ``first = None``.
    """
    if stats.n_modalities != 2:
        raise ValueError("superficial_preference compares exactly two modalities")
    speed = [float(np.linalg.norm(stats.sigma_yx_m(m))) for m in range(2)]
    contrib = [float(np.trace(stats.unimodal_solution(m) @ stats.sigma_yx_m(m).T))
               for m in range(2)]
    tie = np.isclose(speed[0], speed[1], rtol=1e-9, atol=0)
    first = None if tie else stats.names[int(np.argmax(speed))]
    ctie = np.isclose(contrib[0], contrib[1], rtol=1e-9, atol=0)
    more = None if ctie else stats.names[int(np.argmax(contrib))]
    return {
        "speed": dict(zip(stats.names, speed)),
        "contribution": dict(zip(stats.names, contrib)),
        "plateau_loss": {n: saddle_loss(stats, i) for i, n in enumerate(stats.names)},
        "first": first,
        "larger_contribution": more,
        "superficial": bool(first is not None and more is not None and first != more),
    }


def preference_regions(sigma_b_over_a, wa_over_wb):
    """Regions of the (σ_B/σ_A, w_A*/w_B*) plane for uncorrelated scalar modalities (eq. 11).

    With y = w_A* x_A + w_B* x_B and both teacher weights positive, A is learned first iff
    w_A*/w_B* > (σ_B/σ_A)² (eq. 10a) and A contributes more iff w_A*/w_B* > σ_B/σ_A (eq. 10b
    reversed). Returns an integer array: 1 = A first and A contributes more (region I of
    Figure 4c), 2 = B first but A contributes more (region II), 3 = A first but B contributes
    more (region III, eq. 11), 4 = B first and B contributes more. Regions 2 and 3 are the
    superficial ones.
    """
    r = np.asarray(sigma_b_over_a, dtype=float)
    q = np.asarray(wa_over_wb, dtype=float)
    if np.any(r <= 0) or np.any(q <= 0):
        raise ValueError("preference_regions needs positive sigma ratios and positive teacher "
                         "weight ratios (eq. 11 assumes w_A*, w_B* > 0)")
    a_first = q > r ** 2
    a_more = q > r
    return np.where(a_first, np.where(a_more, 1, 3), np.where(a_more, 2, 4))


def reduced_flow(stats, depth: int, fusion_layer: int, w_a, w_b, *, lr: float = 1.0):
    """Velocity (dW_A/dt, dW_B/dt) of the total weights of a balanced, aligned network.

    Two scalar modalities and a scalar output; weights balanced and rank-one (the ansatz of
    eq. 43 with the balance of eq. 41), so that the total weights determine the state
    (theory/landscape.py derives the formulas):

    * L_f = 1 (early fusion; the total map w = (W_A, W_B) is one row):
      τ ẇ = ‖w‖^{2−2/L} [e + (L − 1)(e·ŵ) ŵ]  (L = 2: ‖w‖e + (e·w)w/‖w‖);
    * L_f ≥ 2, with |W_m| = u_m^{L_f} u^{L_c}, u² = u_A² + u_B², L_c = L − L_f:
      τ Ẇ_m = L_f u_m^{2L_f−2} u^{2L_c} e_m
              + L_c sgn(W_m) u_m^{L_f} u^{2L_c−2} Σ_n sgn(W_n) e_n u_n^{L_f}
      (late fusion, L_c = 0: τ Ẇ_m = L |W_m|^{2−2/L} e_m).

    e_m = Σ_yx_m − Σ_n W_n Σ_nm is the error correlation of modality m. ``w_a``, ``w_b``
    are arrays of equal shape; the result has their shape. Velocities are per step at
    learning rate ``lr`` (τ = 1/lr; the default 1 gives the flow in units of τ). Used for
    phase portraits.
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    tau = 1.0 / lr
    if stats.n_modalities != 2 or stats.dims != (1, 1) or stats.output_dim != 1:
        raise ValueError("reduced_flow needs two scalar modalities and a scalar output")
    if not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    if not isinstance(fusion_layer, (int, np.integer)) or not 1 <= fusion_layer <= depth:
        raise ValueError(f"fusion_layer must lie in [1, depth], got {fusion_layer!r}")
    L, Lf = int(depth), int(fusion_layer)
    Lc = L - Lf
    wa, wb = np.broadcast_arrays(np.asarray(w_a, float), np.asarray(w_b, float))
    S, s = stats.sigma, stats.sigma_yx[0]
    ea = s[0] - wa * S[0, 0] - wb * S[1, 0]
    eb = s[1] - wa * S[0, 1] - wb * S[1, 1]
    if Lf == 1:
        norm = np.hypot(wa, wb)
        safe = np.where(norm > 0, norm, 1.0)
        proj = (ea * wa + eb * wb) / safe
        pref = norm ** (2 - 2 / L)
        da = pref * (ea + (L - 1) * proj * wa / safe)
        db = pref * (eb + (L - 1) * proj * wb / safe)
        return da / tau, db / tau
    aa, ab = np.abs(wa), np.abs(wb)
    with np.errstate(divide="ignore", invalid="ignore"):
        # u_A/u_B = (|W_A|/|W_B|)^{1/L_f}; u_B^L = |W_B| / (1 + q²)^{L_c/2}.
        ua = np.where(ab > 0, 0.0, aa ** (1 / L))
        ub = np.where(aa > 0, 0.0, ab ** (1 / L))
        both = (aa > 0) & (ab > 0)
        q = np.where(both, (aa / np.where(ab > 0, ab, 1)) ** (1 / Lf), 0.0)
        ub_both = (ab / (1 + q ** 2) ** (Lc / 2)) ** (1 / L)
        ua = np.where(both, q * ub_both, ua)
        ub = np.where(both, ub_both, ub)
    u2 = ua ** 2 + ub ** 2
    sa, sb = np.sign(wa), np.sign(wb)
    # Σ_n sgn(W_n) e_n u_n^{L_f} u^{L_c−1} is τ du/dt; write everything in u's.
    mix = sa * ea * ua ** Lf + sb * eb * ub ** Lf
    da = Lf * ua ** (2 * Lf - 2) * u2 ** Lc * ea
    db = Lf * ub ** (2 * Lf - 2) * u2 ** Lc * eb
    if Lc > 0:
        da = da + Lc * sa * ua ** Lf * u2 ** (Lc - 1) * mix
        db = db + Lc * sb * ub ** Lf * u2 ** (Lc - 1) * mix
    return da / tau, db / tau


@dataclass(frozen=True)
class Curvature:
    """Largest and smallest nonzero Hessian eigenvalue of the loss at a minimum."""

    lambda_max: float
    lambda_min: float

    def stable(self, lr: float) -> bool:
        """Gradient descent with step ``lr`` is linearly stable at the minimum: η λ_max < 2."""
        return bool(lr * self.lambda_max < 2)

    def steps_to_shrink(self, lr: float, factor: float) -> float:
        """Steps for the excess loss to shrink by ``factor`` along the slowest direction, which
        it does by (1 − η λ_min)² per step."""
        return float(np.log(factor) / (-2 * np.log(abs(1 - lr * self.lambda_min))))


def minimum_curvature(stats) -> Curvature:
    """Curvature of the loss at the global minimum that gradient descent from small weights
    reaches, for a two-layer late-fusion network with a scalar output.

    Small initial weights keep the balancing invariants ≈ 0, so training ends at the balanced,
    rank-one realization of W* = Σ_yx Σ⁻¹: in branch m, W_m¹ = √n_m e v_mᵀ and W_m² = √n_m eᵀ
    with n_m = ‖W*_m‖ and v_m = W*_mᵀ/n_m (e a unit hidden vector). There the residual vanishes
    and the Hessian is JᵀΣJ (J the Jacobian of the total map with respect to the weights),
    whose nonzero eigenvalues are those of Σ·JJᵀ with JJᵀ = blockdiag_m n_m (I + v_m v_mᵀ)
    (theory/landscape.py derives it). Gradient descent with step η is linearly stable there iff
    η λ_max < 2.
    """
    if stats.output_dim != 1:
        raise ValueError("minimum_curvature is derived for a scalar output")
    W = stats.global_solution()[0]
    K = np.zeros((stats.input_dim, stats.input_dim))
    for s in stats.slices:
        n = float(np.linalg.norm(W[s]))
        if n > 0:
            v = W[s] / n
            K[s, s] = n * (np.eye(v.size) + np.outer(v, v))
    # Σ K is similar to K^{1/2} Σ K^{1/2} (symmetric, positive semi-definite).
    w, V = np.linalg.eigh(K)
    root = (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T
    ev = np.linalg.eigvalsh(root @ stats.sigma @ root)
    nonzero = ev[ev > 1e-12 * max(ev[-1], 1e-300)]
    return Curvature(float(ev[-1]), float(nonzero[0]) if nonzero.size else 0.0)
