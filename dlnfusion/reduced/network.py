"""The training actually run, predicted by training a reduction of the network.

The leading-order formulas of :mod:`~dlnfusion.theory.deep` assume weights that are balanced
and rank-one from the start. The paper's deep networks start instead from random matrices
(Figure 6: width 100, u0 = 0.1), which must first align; this makes t_A five times longer than
eq. (48) at L = 4 and moves the time ratios by up to ~70 % for intermediate fusion.

Mechanism (theory/network.py). Every gradient update of a layer is a sum of outer products
b fᵀ of a *backward signal* b (the product of the layers above, transposed) and a *forward
signal* f (the product of the layers below, applied to a modality's input directions). At
initialization these signals span, in each hidden space, a subspace of dimension at most
Σ_m d_m + d_out (3 for two scalar modalities and a scalar output). Project every weight matrix
on these subspaces: W̃^l = Q_lᵀ W^l Q_{l−1}. The projected network has the same total maps
and the same gradients at t = 0, and its dynamics follow the full network's as long as the
random bulk outside the subspaces — whose operator norm is O(u0/√width) — does not feed
back into the signals. For a chain with two hidden matrices the reduced dynamics is, in its
first phase, a linear system whose growing mode gives the effective initial scale of the
aligned weights (theory/network.py derives it); the reduction keeps that mode and the
decaying one, so a sign flip of the second modality's drive (Σ_yxB < 0) is handled as in the
two-layer case.

:func:`reduce_network` builds the reduced network (width ≤ Σ_m d_m + d_out per layer instead
of 100); :func:`train_reduced` trains it with the same update rule and learning rate as the
training it predicts, and :func:`dlnfusion.compare.predict_unimodal_phase` measures t_A, t_B
and the rest on that run. On Figure 6's grids it reproduces the time ratios of the width-100
networks to better than 0.3 %.
"""
from __future__ import annotations

import jax
import numpy as np

from ..networks import NetworkSpec, Params
from ..training import Trajectory, train

__all__ = ["reduce_network", "train_reduced"]


def _basis(vectors, width):
    """Orthonormal basis of the span of the columns, padded with zero columns to ``width``."""
    A = np.concatenate(vectors, axis=1)
    q, r = np.linalg.qr(A)
    d = np.abs(np.diag(r))
    keep = d > 1e-13 * max(d.max(), 1e-300)
    q = q[:, keep]
    if q.shape[1] > width:
        raise AssertionError("signal subspace wider than expected")
    return np.concatenate([q, np.zeros((q.shape[0], width - q.shape[1]))], axis=1)


def _reduce_one(spec: NetworkSpec, branches, post, width):
    M = spec.n_modalities
    d_out = spec.output_dim
    # Forward signals: f[m][l] = W_m^l ... W_m^1 (h_l × d_m), then through the post layers.
    fwd = []
    for m in range(M):
        f, lst = np.eye(spec.input_dims[m]), []
        for W in branches[m]:
            f = W @ f
            lst.append(f)
        fwd.append(lst)
    fpost, cur = [], [fwd[m][-1] for m in range(M)]
    for W in post:
        cur = [W @ c for c in cur]
        fpost.append(cur)
    # Backward signals (covectors d_out × h at the output of each layer).
    b = np.eye(d_out)
    bpost = [None] * len(post)
    for j in reversed(range(len(post))):
        bpost[j] = b
        b = b @ post[j]
    b_fused = b
    bbr = []
    for m in range(M):
        bb, lst = b_fused, [None] * len(branches[m])
        for l in reversed(range(len(branches[m]))):
            lst[l] = bb
            bb = bb @ branches[m][l]
        bbr.append(lst)
    q_branch = [[_basis([fwd[m][l], bbr[m][l].T], width) for l in range(len(branches[m]) - 1)]
                for m in range(M)]
    if post:
        q_fused = _basis([fwd[m][-1] for m in range(M)] + [b_fused.T], width)
        q_post = [_basis(fpost[j] + [bpost[j].T], width) for j in range(len(post) - 1)]
    else:
        q_fused, q_post = np.eye(d_out), []
    new_branches = []
    for m in range(M):
        qs = [np.eye(spec.input_dims[m])] + q_branch[m] + [q_fused]
        new_branches.append(tuple(qs[l + 1].T @ branches[m][l] @ qs[l]
                                  for l in range(len(branches[m]))))
    qs = [q_fused] + q_post + [np.eye(d_out)]
    new_post = tuple(qs[j + 1].T @ post[j] @ qs[j] for j in range(len(post)))
    return tuple(new_branches), new_post


def _modes_one(spec, branches, directions):
    """Two-layer late fusion: keep, in each branch, only the hidden directions of its growing
    and decaying modes along the unit input direction v_m: W¹v_m ± W²ᵀ (theory.effective_init).
    """
    out = []
    for (W1, W2), v in zip(branches, directions):
        q = _basis([(W1 @ v)[:, None], W2.T], 2)
        out.append((q.T @ W1, W2 @ q))
    return tuple(out), ()


def reduce_network(spec: NetworkSpec, params: Params, basis: str = "signals", stats=None):
    """Project a network onto a few hidden directions fixed by its initial weights.

    ``basis="signals"`` (any linear fusion network): the subspaces spanned by the initial
    forward and backward signals; every hidden width becomes Σ_m d_m + d_out (subspaces of
    lower dimension are padded with zero units, which gradient descent leaves at zero), so a
    batch of runs shares one reduced spec. The reduced network has the same total maps and, at
    t = 0, the same gradient (projected) as the original; for two-layer networks its dynamics
    are exactly the original's.

    ``basis="modes"`` (two-layer late fusion, scalar output; needs ``stats``): in each branch
    only the growing and decaying modes along Σ_yx_m (width 2): the rank-one ansatz of the
    paper (eq. 24) with both signs, seeded by the actual weights. It drops the components of
    the first layer along input directions orthogonal to Σ_yx_m, which stay at their initial
    O(u0) size until the second transition.

    ``params`` may carry leading batch axes. Returns ``(reduced_spec, reduced_params)``.
    """
    if basis not in ("signals", "modes"):
        raise ValueError(f"basis must be 'signals' or 'modes', got {basis!r}")
    if basis == "modes":
        if any(d != 2 for d in spec.branch_depths) or spec.post_depth or spec.output_dim != 1:
            raise ValueError("basis='modes' is defined for two-layer late fusion with a scalar "
                             "output")
        if stats is None:
            raise ValueError("basis='modes' needs the stats (the directions of Sigma_yx_m)")
        directions = [(stats.sigma_yx_m(m) / np.linalg.norm(stats.sigma_yx_m(m))).reshape(-1)
                      for m in range(spec.n_modalities)]
    width = sum(spec.input_dims) + spec.output_dim
    leaves = jax.tree_util.tree_leaves(params)
    batch = np.shape(leaves[0])[:-2]
    flat = jax.tree_util.tree_map(lambda a: np.reshape(np.asarray(a), (-1,) + np.shape(a)[-2:]),
                                  params)
    n = int(np.prod(batch)) if batch else 1
    outs = []
    for i in range(n):
        br = [[W[i] for W in layers] for layers in flat.branches]
        po = [W[i] for W in flat.post]
        outs.append(_reduce_one(spec, br, po, width) if basis == "signals"
                    else _modes_one(spec, br, directions))
    if basis == "modes":
        width = 2

    bd = []
    for m, c in enumerate(spec.branch_dims):
        dims = [c[0]] + [width] * (len(c) - 2) + [width if spec.post_depth else spec.output_dim]
        bd.append(tuple(dims))
    pd = ([width] + [width] * (spec.post_depth - 1) + [spec.output_dim]) if spec.post_depth \
        else [spec.output_dim]
    rspec = NetworkSpec(tuple(bd), tuple(pd), spec.activation, spec.names)
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *[Params(b, p) for b, p in outs])
    reshaped = jax.tree_util.tree_map(lambda a: np.reshape(a, batch + a.shape[1:]), stacked)
    return rspec, reshaped


def train_reduced(spec: NetworkSpec, stats, params: Params, lr, method: str = "gd",
                  basis: str = "signals", **train_kwargs) -> Trajectory:
    """Train the reduction (:func:`reduce_network`) of the runs that start from ``params``,
    with the update rule and learning rate of the training it predicts.

    ``params`` are the initial weights of the runs to predict (batched, as in
    :attr:`Trajectory.initial_params`), ``stats`` one Stats or one per run, ``lr`` and
    ``method`` those of the training, ``train_kwargs`` passed to :func:`dlnfusion.train`
    (stopping, recording, interventions...). Returns the reduced runs' :class:`Trajectory`,
    with the batch shape of ``params``. Requires a linear network (the reduction uses the
    linearity of the forward map); ``basis="modes"`` takes one Stats for the whole batch.
    """
    if not spec.is_linear:
        raise ValueError("the signal-subspace reduction needs a linear network")
    one = stats if not isinstance(stats, (list, tuple)) else stats[0]
    if basis == "modes" and isinstance(stats, (list, tuple)) and any(
            not np.allclose(s.sigma_yx, one.sigma_yx) for s in stats):
        raise ValueError("basis='modes' takes one Stats for the whole batch")
    rspec, rparams = reduce_network(spec, params, basis=basis, stats=one)
    batch = np.shape(jax.tree_util.tree_leaves(rparams)[0])[:-2]
    flat = jax.tree_util.tree_map(lambda a: np.reshape(a, (-1,) + a.shape[len(batch):]), rparams)
    n = int(np.prod(batch)) if batch else 1
    data = stats if not isinstance(stats, (list, tuple)) else list(stats)
    if isinstance(data, list):
        if len(data) != n:
            raise ValueError(f"got {len(data)} Stats for {n} runs")
    lr = np.broadcast_to(np.asarray(lr, dtype=float), batch).reshape(-1)
    traj = train(rspec, data, flat, lr=lr, method=method, **train_kwargs)
    return traj.reshape(batch) if batch else traj
