"""Losses: per sample, and in terms of data moments for a linear network.

Per sample (``ŷ``, ``y`` of shape (P, d_out), summed over outputs): :func:`squared`
½‖y − ŷ‖² and :func:`logistic` ln(1 + e^{−yŷ}) (labels ±1).

In moments: the squared loss of a linear network depends on the data only through Σ, Σ_yx and
⟨‖y‖²⟩ (:func:`squared_moments`). The logistic loss does not in general, but when the inputs are
Gaussian and the target is jointly Gaussian with them (as in the paper's toy data, y = w*·x),
(y, ŷ) is a centered Gaussian pair whose covariance is fixed by the same moments, and the
expected loss is a smooth function of them, computed here to ~1e-12 (:func:`gaussian_logistic`,
theory/losses.py derives it).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["squared", "logistic", "squared_moments", "gaussian_logistic"]


def squared(yhat, y):
    """½‖y − ŷ‖² of every sample, shape (P,)."""
    return 0.5 * jnp.sum((y - yhat) ** 2, axis=-1)


def logistic(yhat, y):
    """ln(1 + e^{−yŷ}) summed over outputs, for labels y = ±1, shape (P,)."""
    return jnp.sum(jax.nn.softplus(-y * yhat), axis=-1)


def squared_moments(W, sigma, w_star, l_star):
    """½⟨‖y − W x‖²⟩ of a total map W (d_out, D), written around the minimum:

        L(W) = L* + ½ tr[(W − W*) Σ (W − W*)ᵀ],   W* = Σ_yx Σ⁺,  L* = L(W*),

    which equals ½ tr(Σ_yy − 2WΣ_xy + WΣWᵀ) whenever Σ_yx = W*Σ (theory/losses.py) and
    keeps its relative precision near the minimum, where the trace form cancels. Works on numpy
    and JAX arrays alike.
    """
    D = W - w_star
    return l_star + 0.5 * ((D @ sigma) * D).sum()


# Gauss–Legendre rule on [−1, 1] for each piece of the angular integral.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(12)
# Where q(θ) changes sign the kernel varies on a θ-scale of ~1/|λ|; the pieces next to the
# sign change end at these multiples of 1/max(|λ±|, 1) from it, so that every scale of weight
# size gets pieces of its own (graded mesh; accuracy measured in tests/test_losses.py).
_GRADES = 4.0 ** np.arange(-1, 7)


def _softplus_kernel(q):
    """H(q) = ∫₀^∞ ln(1 + e^{−2qt}) e^{−t} dt, a smooth function of q.

    H(q) = h(2|q|) + max(−2q, 0) with h(c) = ln 2 − ½[ψ(1/(2c) + 1) − ψ(1/(2c) + ½)]
    (ψ the digamma function); near q = 0 the Taylor polynomial ln 2 − q + q² − 2q⁴ (the two
    pieces are not separately smooth there).
    """
    small = jnp.abs(q) < 1e-3
    qs = jnp.where(small, 1.0, q)
    c = 2 * jnp.abs(qs)
    x = 0.5 / c
    h = jnp.log(2.0) - 0.5 * (jax.scipy.special.digamma(x + 1.0)
                              - jax.scipy.special.digamma(x + 0.5))
    taylor = jnp.log(2.0) - q + q * q - 2 * q ** 4
    return jnp.where(small, taylor, h + jnp.maximum(-2 * qs, 0.0))


def gaussian_logistic(W, sigma, sigma_yx, sigma_yy):
    """E ln(1 + e^{−yŷ}) for Gaussian inputs and a target jointly Gaussian with them.

    ``W`` is the (1, D) total map; ``sigma``, ``sigma_yx``, ``sigma_yy`` the moments (a
    :class:`~dlnfusion.stats.Stats` holds them). Differentiable with JAX.

    The product of the pair is yŷ = λ₊u₁² + λ₋u₂² with independent standard u's and
    λ± = ½(cov ± σ_yσ_ŷ) (the eigenvalues of its quadratic form; cov = WΣ_xy,
    σ_ŷ² = WΣWᵀ). In polar coordinates (t = r²/2) this gives (theory/losses.py)

        E ln(1 + e^{−yŷ}) = (2/π) ∫₀^{π/2} H(λ₊cos²θ + λ₋sin²θ) dθ,

    with the smooth kernel H of :func:`_softplus_kernel`. The θ-integral is split where the
    argument vanishes; next to that point the kernel varies on a θ-scale of 1/max|λ±|, so the
    pieces there are graded in multiples of that scale, and each piece is done by 12-node
    Gauss–Legendre. Accurate to ~1e-13 relative from tiny weights to weights of size 1000
    (|λ±| ~ 2000; against 20-digit quadrature, theory/losses.py).
    """
    var_y = sigma_yy[0, 0]
    var_h = (W @ sigma @ W.T)[0, 0]
    cov = (W @ sigma_yx.T)[0, 0]
    prod = jnp.sqrt(var_y * var_h + 1e-300)
    lp, lm = 0.5 * (cov + prod), 0.5 * (cov - prod)
    # Where λ₊cos² + λ₋sin² = 0. The split point does not change the integral, so no gradient
    # is taken through it (its derivative is singular when λ₋ → 0), nor through the grading.
    split = jax.lax.stop_gradient(jnp.arctan2(jnp.sqrt(jnp.maximum(lp, 0.0)),
                                              jnp.sqrt(jnp.maximum(-lm, 0.0)) + 1e-300))
    width = jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.maximum(jnp.abs(lp), jnp.abs(lm)), 1.0))
    steps = width * _GRADES
    below = jnp.clip(split - steps[::-1], 0.0, split)          # graded toward the split
    above = jnp.clip(split + steps, split, jnp.pi / 2)
    cuts = jnp.concatenate([jnp.zeros(1), below, split[None], above, jnp.full(1, jnp.pi / 2)])
    lo, hi = cuts[:-1, None], cuts[1:, None]
    theta = 0.5 * (hi - lo) * _GL_NODES[None, :] + 0.5 * (hi + lo)
    w = 0.5 * (hi - lo) * _GL_WEIGHTS[None, :]
    q = lp * jnp.cos(theta) ** 2 + lm * jnp.sin(theta) ** 2
    return (2 / jnp.pi) * jnp.sum(w * _softplus_kernel(q))


# ---------------------------------------------------------------------- ReLU, Gaussian inputs
@jax.custom_jvp
def _arccos_kernel(c, p):
    """(1/2π)(p sin θ + (π − θ) c) with cos θ = c/p: E[relu(u) relu(u')] for centered jointly
    Gaussian u, u' with covariance c and product of standard deviations p (Cho & Saul's
    degree-1 arc-cosine kernel; theory/relu.py derives it). 0 where p = 0."""
    safe = jnp.where(p > 0, p, 1.0)
    cos = jnp.clip(c / safe, -1.0, 1.0)
    theta = jnp.arccos(cos)
    val = (safe * jnp.sqrt(1.0 - cos * cos) + (jnp.pi - theta) * c) / (2 * jnp.pi)
    return jnp.where(p > 0, val, 0.0)


@_arccos_kernel.defjvp
def _arccos_kernel_jvp(primals, tangents):
    # dK/dc = (π − θ)/2π and dK/dp = sin θ/2π: finite everywhere, where automatic
    # differentiation through arccos and the square root gives 0·∞ at θ = 0 (c = p, on the
    # diagonal) (theory/relu.py).
    c, p = primals
    dc, dp = tangents
    safe = jnp.where(p > 0, p, 1.0)
    cos = jnp.clip(c / safe, -1.0, 1.0)
    theta = jnp.arccos(cos)
    grad_c = jnp.where(p > 0, (jnp.pi - theta) / (2 * jnp.pi), 0.5)
    grad_p = jnp.where(p > 0, jnp.sqrt(1.0 - cos * cos) / (2 * jnp.pi), 0.0)
    return _arccos_kernel(c, p), grad_c * dc + grad_p * dp


def relu_gram(A, sigma):
    """E[relu(A x) relu(A x)ᵀ] for x ~ N(0, Σ): the (H, H) Gram matrix of H ReLU units whose
    pre-activations are the rows of A (H, D) applied to x."""
    C = A @ sigma @ A.T
    n = jnp.sqrt(jnp.clip(jnp.diagonal(C), 0.0, None))
    return _arccos_kernel(C, n[:, None] * n[None, :])


def relu_two_layer_moments(A, V, sigma, sigma_yx, sigma_yy):
    """½⟨‖y − V relu(A x)‖²⟩ for x ~ N(0, Σ) and y jointly Gaussian with x (centered).

    E[y relu(a·x)] = ½ Σ_yx a (the part of y along a·x is linear, and E[u relu(u)] = ½E[u²]),
    and the unit-unit terms are :func:`relu_gram`: exact, O(H²) per evaluation."""
    cross = 0.5 * sigma_yx @ A.T                      # (d_out, H): E[y relu(A x)ᵀ]
    G = relu_gram(A, sigma)
    return 0.5 * (jnp.trace(sigma_yy) - 2 * jnp.sum(V * cross) + jnp.sum((V @ G) * V))
