"""Modality-balancing methods as optax gradient transformations keyed by branch.

* :func:`inforeg`: InfoReg (Huang, Wei, Yang & Hu, CVPR 2025, Algorithm 1, eqs. 8-16). Inside
  the prime learning window of the information-sufficient modality m (eq. 11 on its Fisher
  trace, tested once per epoch), the gradient of the proximal term (α/2)‖θ_m − θ_m^{prev}‖²,
  α(θ_m − θ_m^{prev}), is added to branch m's gradient, θ_m^{prev} being its weights at the
  start of the epoch and α = c_m exp(β tanh Δ_m) (eq. 16; c_m = 1 in the paper).
* :func:`ogm_ge`: OGM-GE (Peng et al., CVPR 2022). The leading modality's gradients are scaled
  by 1 − tanh(α·ratio), ratio = s_lead/s_other > 1 (the authors' current code; the earlier
  1 − tanh(α(ratio − 1)) with ``continuous=True``), and, while the modulation is on, Gaussian
  noise with each gradient tensor's own standard deviation is added to both branches
  ("generalization enhancement").
* :func:`unimodal_losses`: the comparison the papers make, training with added unimodal
  losses: λ_m ∇ of branch m's unimodal loss ½E‖y − ŷ_m‖² (the network with the other inputs
  zeroed) is added to the gradient; chained before :func:`inforeg` it gives InfoReg*, the
  paper's variant with unimodal losses.

All three read the run's data through optax's extra arguments: :func:`dlnfusion.train` passes
``data`` (the population Moments in force, deficits included) and ``step`` to every
``GradientTransformationExtraArgs`` (``optax.chain`` is one). Chain them before the optimizer:

    opt = lambda lr: optax.chain(inforeg(spec, epoch=10), optax.sgd(lr))
    dln.train(spec, stats, params, optimizer=opt)

Scores. The paper's performance score s_m (eq. 8) reads, as extracted, as the mean
cross-entropy of the unimodal prediction, a loss, for which the "better" modality would have
the smaller value; eqs. 9-10 and the method only make sense for a score where larger is better,
and the authors' code uses the summed softmax probability of the true class. At population
level with the squared loss dlnfusion uses the larger-is-better analogue: the loss reduction of
branch m alone (the other branches' outputs removed),

    s_m = L(0) − L(ŷ_m only) = tr(Σ_yx_m W_mᵀ) − ½ tr(W_m Σ_mm W_mᵀ),

W_m the total map of branch m. Δ_m (eq. 10) is the mean of s_m − s_n over the modalities n with
s_n < s_m (0 when there is none): the information-sufficient modality is the one with Δ_m > 0.

Epoch. At population level there are no batches; an epoch is ``epoch`` steps: the refresh
period of θ^{prev} and of the window test, whose traces are taken at the start of every epoch
(the end of the previous one, as Algorithm 1 computes Tr F^t after epoch t).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import checks
from ..networks import (FusionCNN, FusionMLP, NetworkSpec, Params, branch_parameters,
                        total_maps)
from ..rules import (WINDOWS, _trace_one, inforeg_regulation, ogm_coefficients, push_trace,
                     score_gaps)

__all__ = ["inforeg", "ogm_ge", "branch_scores", "InfoRegState", "OGMState", "WINDOWS",
           "inforeg_batches", "ogm_ge_batches", "classifier_scores", "InfoRegBatchState",
           "unimodal_losses", "unimodal_losses_batches", "TRACES"]

def branch_scores(spec: NetworkSpec, params: Params, moments) -> jnp.ndarray:
    """s_m = tr(Σ_yx_m W_mᵀ) − ½ tr(W_m Σ_mm W_mᵀ) of every branch (module docstring): how much
    branch m alone lowers the population squared loss. Traceable; (M,)."""
    maps = total_maps(spec, params)
    dims = [W.shape[1] for W in maps]
    offs = np.concatenate([[0], np.cumsum(dims)])
    out = []
    for m, W in enumerate(maps):
        sl = slice(int(offs[m]), int(offs[m + 1]))
        syx = moments.sigma_yx[:, sl]
        S = moments.sigma[sl, sl]
        out.append(jnp.sum(syx * W) - 0.5 * jnp.sum((W @ S) * W))
    return jnp.stack(out)


def _check_spec(spec, who):
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"{who}: spec must be a NetworkSpec, got {type(spec).__name__}")
    if not spec.is_linear:
        raise ValueError(f"{who} at population level needs a linear network (its Fisher trace "
                         "and scores are closed forms)")




def _branch_values(names, name, values, default):
    """One number per branch from a dict keyed by branch name (missing: ``default``)."""
    if values is None:
        return np.full(len(names), default, float)
    if not isinstance(values, dict):
        raise ValueError(f"{name} must be a dict keyed by branch name {tuple(names)}, got "
                         f"{values!r}")
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"{name}: unknown branch {sorted(unknown)}; the branches are "
                         f"{list(names)}")
    return np.array([float(values.get(n, default)) for n in names])


def _inforeg_options(names, beta, K, window, average, prefactors):
    """Validated (β, average, prefactors per branch) of InfoReg; K and window checked."""
    beta = checks.nonnegative("beta", beta)
    average = checks.positive_int("average", average)
    if isinstance(K, bool) or not isinstance(K, (int, float, np.floating)) or not 0 < K < 1:
        raise ValueError(f"K (the window threshold) must lie in (0, 1), got {K!r}")
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    if isinstance(prefactors, dict):
        for n, c in prefactors.items():
            checks.nonnegative(f"prefactors[{n!r}]", c)
    pref = _branch_values(names, "prefactors", prefactors, 1.0)
    return beta, average, pref


class InfoRegState(NamedTuple):
    """count: steps taken; prev: the weights at the start of the epoch; history: Tr F of every
    branch at the last ``average + 1`` epoch starts (newest last); epochs: how many epoch
    starts the history holds; regulated: which branches were regulated at the last step."""

    count: jnp.ndarray
    prev: Params
    history: jnp.ndarray
    epochs: jnp.ndarray
    regulated: jnp.ndarray


def inforeg(spec: NetworkSpec, epoch: int = 10, beta: float = 0.9, K: float = 0.04,
            window: str = "paper", average: int = 10, prefactors=None,
            batch_size: int | None = None) -> optax.GradientTransformationExtraArgs:
    """InfoReg as a gradient transformation (module docstring) for population-level training
    of the linear network ``spec``.

    ``epoch`` steps per epoch; ``beta`` (≥ 0) and ``prefactors`` (a dict {branch: c_m}, each c_m
    a finite number ≥ 0, default 1: the paper; the authors' code uses β = 1 inside the exponent
    and fixed prefactors) give α = c_m exp(β tanh Δ_m); ``K`` the window threshold in (0, 1);
    ``window``: "paper" (eq. 11), "moving_average" (the authors' ``average``-epoch moving
    average), "always" (regulate throughout) or "outside" (only outside the paper's window: the
    two ablations of the paper's Table 4), or "never". ``batch_size``: the Fisher
    trace of the window test from per-batch gradients (the authors' variant) instead of
    per-sample ones.
    """
    _check_spec(spec, "inforeg")
    epoch = checks.positive_int("epoch", epoch)
    beta, average, pref = _inforeg_options(spec.names, beta, K, window, average, prefactors)
    if batch_size is not None:
        checks.positive_int("batch_size", batch_size)
    M = spec.n_modalities
    hist_len = average + 1 if window == "moving_average" else 2

    def init_fn(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return InfoRegState(jnp.zeros((), jnp.int32), params,
                            jnp.zeros((hist_len, M), dtype), jnp.zeros((), jnp.int32),
                            jnp.zeros((M,), bool))

    def update_fn(updates, state, params=None, **extra):
        if params is None or "data" not in extra:
            raise ValueError("inforeg needs params and the run's data: use it inside "
                             "dlnfusion.train (population level), chained before the optimizer")
        mo = extra["data"]
        start = state.count % epoch == 0
        noise = mo.sigma_yy - mo.w_star @ mo.sigma @ mo.w_star.T
        trace = _trace_one(params, mo.sigma, noise, mo.w_star, "branch", batch_size)
        history, epochs = push_trace(state.history, state.epochs, trace, start)
        prev = jax.tree_util.tree_map(lambda p, q: jnp.where(start, p, q), params, state.prev)
        gaps = score_gaps(branch_scores(spec, params, mo))
        # the history holds the initial trace too: epoch t starts with t + 1 traces
        regulated, coefs = inforeg_regulation(history, epochs - 1, gaps, window=window, K=K,
                                              average=average, beta=beta, prefactors=pref)
        new_branches = []
        for m, (g_layers, p_layers, q_layers) in enumerate(zip(updates.branches,
                                                              params.branches, prev.branches)):
            coef = coefs[m]
            new_branches.append(tuple(g + coef * (p - q)
                                      for g, p, q in zip(g_layers, p_layers, q_layers)))
        out = Params(tuple(new_branches), updates.post)
        return out, InfoRegState(state.count + 1, prev, history, epochs, regulated)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _run_key(seed, params):
    """The noise key of one run: ``seed`` folded with a fingerprint of the run's initial
    weights. Under the vmap of a batch every run calls init with its own weights, so runs that
    start apart draw independent noise (a plain PRNGKey(seed) would give every run of the batch
    the same stream); the fingerprint is the float32 bit pattern of Σ|θ|."""
    total = sum(jnp.sum(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(params))
    bits = jax.lax.bitcast_convert_type(jnp.asarray(total, jnp.float32), jnp.uint32)
    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), bits)


class OGMState(NamedTuple):
    """key: the noise generator; coefficients: the gradient scale of every branch at the last
    step (1: not modulated)."""

    key: jnp.ndarray
    coefficients: jnp.ndarray


def ogm_ge(spec: NetworkSpec, alpha: float = 0.8, noise: bool = True,
           continuous: bool = False, seed: int = 0) -> optax.GradientTransformationExtraArgs:
    """OGM-GE as a gradient transformation (module docstring) for population-level training of
    the linear two-branch network ``spec``: the leading branch's gradients scaled by
    1 − tanh(``alpha``·ratio) (``continuous=True``: 1 − tanh(α(ratio − 1))), Gaussian noise with
    every gradient tensor's own standard deviation added to both branches while the modulation
    is on (``noise=False``: OGM without GE). Every run of a batch draws its own noise, from
    ``seed`` and its initial weights. The scores are :func:`branch_scores`; a branch whose
    score is not positive counts as infinitely behind (the leader's coefficient is 0 until the
    other branch has learned something)."""
    _check_spec(spec, "ogm_ge")
    if spec.n_modalities != 2:
        raise ValueError(f"ogm_ge modulates two modalities; the network has {spec.n_modalities}")
    alpha = checks.nonnegative("alpha", alpha)
    seed = checks.integer("seed", seed)

    def init_fn(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return OGMState(_run_key(seed, params), jnp.ones((2,), dtype))

    def update_fn(updates, state, params=None, **extra):
        if params is None or "data" not in extra:
            raise ValueError("ogm_ge needs params and the run's data: use it inside "
                             "dlnfusion.train (population level), chained before the optimizer")
        s = branch_scores(spec, params, extra["data"])
        coef = ogm_coefficients(s, alpha, continuous).astype(state.coefficients.dtype)
        on = jnp.any(coef < 1.0)
        key, sub = jax.random.split(state.key)
        keys = jax.random.split(sub, sum(spec.branch_depths))
        new_branches, i = [], 0
        for m, layers in enumerate(updates.branches):
            out = []
            for g in layers:
                g2 = coef[m] * g
                if noise:
                    eps = jax.random.normal(keys[i], g.shape, g.dtype) * jnp.std(g)
                    g2 = g2 + jnp.where(on, eps, 0.0)
                out.append(g2)
                i += 1
            new_branches.append(tuple(out))
        return Params(tuple(new_branches), updates.post), OGMState(key, coef)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _weights(names, weight):
    """λ per branch from a number (every branch) or a dict keyed by branch name (missing: 0)."""
    if isinstance(weight, dict):
        lam = _branch_values(names, "weight", weight, 0.0)
    else:
        lam = np.full(len(names), checks.nonnegative("weight", weight))
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError(f"weight must be non-negative, got {weight!r}")
    return lam


def unimodal_losses(spec: NetworkSpec, weight=1.0) -> optax.GradientTransformationExtraArgs:
    """Adds to the gradient of population-level training (:func:`dlnfusion.train`) the gradient
    of Σ_m λ_m ½E‖y − W_m x_m‖², W_m the total map of branch m (the network's prediction from
    modality m alone), with respect to every parameter (the fused layers of an intermediate
    fusion network included). ``weight``: λ for every branch, or a dict keyed by branch name
    (missing branches 0). The squared loss, whatever the run's objective. Chain it first: before
    :func:`ogm_ge` the unimodal gradients are modulated too, before :func:`inforeg` it gives
    InfoReg*."""
    _check_spec(spec, "unimodal_losses")
    lam = _weights(spec.names, weight)
    dims = list(spec.input_dims)
    offs = np.concatenate([[0], np.cumsum(dims)]).astype(int)

    def loss(params, data):
        total = 0.0
        for m, W in enumerate(total_maps(spec, params)):
            sl = slice(int(offs[m]), int(offs[m + 1]))
            S = data.sigma[sl, sl]
            total = total + lam[m] * (0.5 * jnp.sum((W @ S) * W)
                                      - jnp.sum(data.sigma_yx[:, sl] * W))
        return total

    def update_fn(updates, state, params=None, **extra):
        if params is None or "data" not in extra:
            raise ValueError("unimodal_losses needs params and the run's data: use it inside "
                             "dlnfusion.train (population level), chained before the optimizer")
        g = jax.grad(loss)(params, extra["data"])
        return jax.tree_util.tree_map(jnp.add, updates, g), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)


# ---------------------------------------------------------------------- mini-batch training
def classifier_scores(model, params, xs, y, mask=None) -> jnp.ndarray:
    """The authors' performance score of every modality on a batch: the sum over the batch of
    the softmax probability of the true class, the network evaluated with the other inputs
    zeroed (dlnfusion's unimodal convention, as ``fit``'s unimodal accuracies). (M,)."""
    mask = jnp.ones(y.shape[0]) if mask is None else mask
    out = []
    for m in range(len(xs)):
        blank = tuple(x if n == m else jnp.zeros_like(x) for n, x in enumerate(xs))
        p = jax.nn.softmax(model.apply(params, blank), axis=-1)
        out.append(jnp.sum(jnp.take_along_axis(p, y[:, None].astype(jnp.int32), -1)[:, 0]
                           * mask))
    return jnp.stack(out)


def _check_model(model, who):
    """The modality names of a classifier (FusionMLP, FusionCNN, or a model wrapping one as
    ``base``, e.g. CrossReconstruction); a clear error for anything else."""
    base = getattr(model, "base", model)
    if isinstance(base, FusionMLP):
        return tuple(base.spec.names)
    if isinstance(base, FusionCNN):
        return tuple("ABCDEFGHIJ"[:base.n_modalities])
    raise ValueError(f"{who}: model must be a FusionMLP or a FusionCNN (or wrap one as "
                     f"``base``), got {type(model).__name__}")


def _map_branches(model, tree, fn):
    """Apply ``fn(m, branch_subtree)`` to every branch of a classifier's parameter pytree (the
    grouping of :func:`dlnfusion.networks.branch_parameters`); the rest is kept."""
    base = getattr(model, "base", None)
    if base is not None and isinstance(tree, dict) and "net" in tree:
        return {**tree, "net": _map_branches(base, tree["net"], fn)}
    new = [fn(m, g) for m, g in enumerate(branch_parameters(model, tree))]
    if isinstance(model, FusionMLP):
        return {**tree, "branches": tuple(b for b, _ in new), "fused": tuple(f for _, f in new)}
    return {**tree, "branches": tuple(new)}


class InfoRegBatchState(NamedTuple):
    """epoch: the epoch of the last step (−1 before the first); prev: the weights at the start
    of the epoch; running: Σ over this epoch's batches of ‖g_m‖² (the authors' trace); history:
    the traces of the last finished epochs (newest last); epochs: how many are held; regulated:
    the flags of the last step."""

    epoch: jnp.ndarray
    prev: object
    running: jnp.ndarray
    history: jnp.ndarray
    epochs: jnp.ndarray
    regulated: jnp.ndarray


TRACES = ("batch", "per_sample")


def _per_sample_sqnorms(model, params, xs, y, mask):
    """Σ_i mask_i ‖∇_{θ_m} ℓ_i‖² for every branch m, ℓ_i the cross-entropy of sample i's fused
    output, the per-sample gradients taken with vmap over the batch. (M,)."""
    def one(p, *x_and_y):
        *x, label = x_and_y
        logits = model.apply(p, tuple(a[None] for a in x))[0]
        return optax.softmax_cross_entropy_with_integer_labels(logits, label.astype(jnp.int32))
    grads = jax.vmap(jax.grad(one), in_axes=(None,) + (0,) * (len(xs) + 1))(params, *xs, y)
    per = jnp.stack([sum(jnp.sum(a * a, axis=tuple(range(1, a.ndim)))
                         for a in jax.tree_util.tree_leaves(b))
                     for b in branch_parameters(model, grads)])          # (M, batch)
    return per @ mask.astype(per.dtype)


def inforeg_batches(model, beta: float = 0.9, K: float = 0.04, window: str = "paper",
                    average: int = 10, prefactors=None,
                    trace: str = "batch") -> optax.GradientTransformationExtraArgs:
    """InfoReg for mini-batch training with :func:`dlnfusion.fit` of a classifier (FusionMLP,
    FusionCNN): per batch, the scores of :func:`classifier_scores`, Δ_m (eq. 10), α =
    c_m exp(β tanh Δ_m) (eq. 16), and for the information-sufficient branch inside its window
    the proximal gradient α(θ_m − θ_m^{prev}) added, θ^{prev} the weights at the start of the
    epoch. The window (eq. 11, or the moving average, "always", "never") is tested on the
    authors' trace (``trace="batch"``): the squared norm of each batch's gradient of branch m
    (the incoming gradient, whatever was chained before), summed over the batches of an epoch;
    or the paper's (``trace="per_sample"``, eq. 7): Σ_i ‖∇_{θ_m} ℓ_i‖² over the epoch's
    samples, ℓ_i the fused cross-entropy of sample i, per-sample gradients by vmap (N × the
    Fisher trace E‖∇ℓ‖², N the samples per epoch; the window test is scale-free). ``fit``
    passes the batch and the epoch as optax extra arguments."""
    names = _check_model(model, "inforeg_batches")
    beta, average, pref = _inforeg_options(names, beta, K, window, average, prefactors)
    if trace not in TRACES:
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
    M = len(names)
    hist_len = average + 1 if window == "moving_average" else 2

    def init_fn(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return InfoRegBatchState(jnp.asarray(-1, jnp.int32), params, jnp.zeros((M,), dtype),
                                 jnp.zeros((hist_len, M), dtype), jnp.zeros((), jnp.int32),
                                 jnp.zeros((M,), bool))

    def update_fn(updates, state, params=None, **extra):
        if params is None or "batch" not in extra or "epoch" not in extra:
            raise ValueError("inforeg_batches needs params, the batch and the epoch: use it "
                             "inside dlnfusion.fit, chained before the optimizer")
        xs, y, mask = extra["batch"]
        epoch = jnp.asarray(extra["epoch"], jnp.int32)
        start = epoch != state.epoch
        finished = start & (state.epoch >= 0)       # the previous epoch's trace is complete
        history, epochs = push_trace(state.history, state.epochs, state.running, finished)
        running = jnp.where(start, 0.0, state.running)
        prev = jax.tree_util.tree_map(lambda p, q: jnp.where(start, p, q), params, state.prev)
        if trace == "batch":
            g2 = jnp.stack([_sqnorm(b) for b in branch_parameters(model, updates)])
        else:
            g2 = _per_sample_sqnorms(model, params, xs, y, mask)
        running = running + g2.astype(running.dtype)
        gaps = score_gaps(classifier_scores(model, params, xs, y, mask))
        regulated, coefs = inforeg_regulation(history, epochs, gaps, window=window, K=K,
                                              average=average, beta=beta, prefactors=pref)
        p_groups = branch_parameters(model, params)
        q_groups = branch_parameters(model, prev)

        def reg(m, g):
            coef = coefs[m]
            return jax.tree_util.tree_map(lambda a, p, q: a + coef * (p - q), g,
                                          p_groups[m], q_groups[m])
        out = _map_branches(model, updates, reg)
        return out, InfoRegBatchState(epoch, prev, running, history, epochs, regulated)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sqnorm(tree):
    return sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(tree))


def ogm_ge_batches(model, alpha: float = 0.8, noise: bool = True, continuous: bool = False,
                   seed: int = 0) -> optax.GradientTransformationExtraArgs:
    """OGM-GE for mini-batch training with :func:`dlnfusion.fit` of a two-branch classifier:
    per batch the scores of :func:`classifier_scores`, ratio = s_lead/s_other, the leading
    branch's gradients × (1 − tanh(α·ratio)) (``continuous``: 1 − tanh(α(ratio − 1))), and
    Gaussian noise with each gradient tensor's own standard deviation on both branches while
    the modulation is on (``noise``)."""
    names = _check_model(model, "ogm_ge_batches")
    if len(names) != 2:
        raise ValueError(f"ogm_ge_batches modulates two modalities; the model has {len(names)}")
    alpha = checks.nonnegative("alpha", alpha)
    seed = checks.integer("seed", seed)

    def init_fn(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return OGMState(_run_key(seed, params), jnp.ones((2,), dtype))

    def update_fn(updates, state, params=None, **extra):
        if params is None or "batch" not in extra:
            raise ValueError("ogm_ge_batches needs params and the batch: use it inside "
                             "dlnfusion.fit, chained before the optimizer")
        xs, y, mask = extra["batch"]
        s = classifier_scores(model, params, xs, y, mask)
        coef = ogm_coefficients(s, alpha, continuous).astype(state.coefficients.dtype)
        on = jnp.any(coef < 1.0)
        key, sub = jax.random.split(state.key)

        def mod(m, g):
            leaves, tree = jax.tree_util.tree_flatten(g)
            keys = jax.random.split(jax.random.fold_in(sub, m), len(leaves))
            out = []
            for k, a in zip(keys, leaves):
                b = coef[m] * a
                if noise:
                    b = b + jnp.where(on, jax.random.normal(k, a.shape, a.dtype) * jnp.std(a),
                                      0.0)
                out.append(b)
            return jax.tree_util.tree_unflatten(tree, out)
        return _map_branches(model, updates, mod), OGMState(key, coef)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def unimodal_losses_batches(model, weight=1.0) -> optax.GradientTransformationExtraArgs:
    """Adds to the gradient of mini-batch training with :func:`dlnfusion.fit` the gradient of
    Σ_m λ_m × the batch's mean cross-entropy of the classifier evaluated on modality m alone
    (the other inputs zeroed, dlnfusion's unimodal convention), with respect to every parameter.
    ``weight``: λ for every branch or a dict keyed by branch name (missing: 0). Chained before
    :func:`inforeg_batches` it gives InfoReg*."""
    names = _check_model(model, "unimodal_losses_batches")
    lam = _weights(names, weight)

    def loss(params, xs, y, mask):
        total = 0.0
        for m in range(len(xs)):
            blank = tuple(x if n == m else jnp.zeros_like(x) for n, x in enumerate(xs))
            out = model.apply(params, blank)
            ce = optax.softmax_cross_entropy_with_integer_labels(out, y.astype(jnp.int32))
            total = total + lam[m] * jnp.sum(ce * mask) / jnp.sum(mask)
        return total

    def update_fn(updates, state, params=None, **extra):
        if params is None or "batch" not in extra:
            raise ValueError("unimodal_losses_batches needs params and the batch: use it inside "
                             "dlnfusion.fit, chained before the optimizer")
        xs, y, mask = extra["batch"]
        g = jax.grad(loss)(params, xs, y, mask)
        return jax.tree_util.tree_map(jnp.add, updates, g), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)
