"""The information amount Tr F_m = E‖∇_{θ_m} ℓ‖² measured from per-sample gradients (any
network), and recorded during training (Huang et al., CVPR 2025, eqs. 7 and 13).

* :func:`fisher_sampled`: per-sample gradients with ``jax.vmap`` over samples, for a linear or
  nonlinear :class:`~dlnfusion.networks.NetworkSpec` (squared loss) or a classifier model with
  ``apply`` (:class:`~dlnfusion.networks.FusionMLP`, :class:`~dlnfusion.networks.FusionCNN`;
  cross-entropy on integer labels), evaluated in chunks so that memory stays bounded.
  ``batch_size=b``: the squared norm of each batch's mean gradient instead (the authors'
  per-batch variant), averaged over the batches (their code sums over the batches of an
  epoch: multiply by the number of batches).
* :func:`fisher_observable`: a Record of the closed form
  (:func:`dlnfusion.rules.fisher_trace`) from a Snapshot's weights and moments, for
  ``train(..., observe={"fisher": fisher_observable()})`` at population level.
* :func:`fisher_sample_observable`: a Record of :func:`fisher_sampled` on fixed samples.

Branch groups: for a NetworkSpec the matrices of ``params.branches[m]`` (as
:func:`dlnfusion.param_labels`); for FusionMLP/FusionCNN branch m's layers and its block of
the fusion layer (``params["fused"][m]``); for FusionCNN branch m's layers (its fusion layer is
one convolution over the concatenated channels); the shared layers after fusion belong to no
branch (:func:`dlnfusion.networks.branch_parameters`).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import NetworkSpec, branch_parameters, forward
from ..precision import float64
from ..rules import _check_batch, _check_by, _check_spec_params, _trace_one
from ..training.observables import Record

__all__ = ["fisher_sampled", "fisher_observable", "fisher_sample_observable"]


def _sqnorm(tree):
    return sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(tree))


def _grouped(model, grads, by):
    """Squared norms of a gradient pytree: per branch (M,) or per leaf."""
    if by == "layer":
        return jnp.stack([jnp.sum(a * a) for a in jax.tree_util.tree_leaves(grads)])
    return jnp.stack([_sqnorm(b) for b in branch_parameters(model, grads)])


def _loss_fn(model):
    if isinstance(model, NetworkSpec):
        return lambda p, xs, y: 0.5 * jnp.sum((y - forward(model, p, xs)) ** 2)
    if not callable(getattr(model, "apply", None)):
        raise ValueError("model must be a NetworkSpec or a classifier with an apply(params, xs) "
                         f"method (FusionMLP, FusionCNN), got {type(model).__name__}")

    def ce(p, xs, y):
        logits = model.apply(p, xs)
        return -jnp.sum(jax.nn.log_softmax(logits, axis=-1)
                        * jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype))
    return ce


@dataclass(frozen=True)
class _Sampled:
    """Squared gradient norms over a set of samples (traceable; equal objects share one
    compilation)."""

    model: object
    by: str
    batch_size: int | None
    chunk: int
    stderr: bool = False

    def __call__(self, params, xs, y):
        loss = _loss_fn(self.model)
        n = y.shape[0]
        b = 1 if self.batch_size is None else self.batch_size
        n_groups = n // b
        # Each group of b samples gives one squared norm of its mean gradient (b = 1: the
        # per-sample gradient). Groups are processed ``chunk`` at a time.
        xs_g = tuple(x[:n_groups * b].reshape((n_groups, b) + x.shape[1:]) for x in xs)
        y_g = y[:n_groups * b].reshape((n_groups, b) + y.shape[1:])

        def one(x_grp, y_grp):
            g = jax.grad(lambda p: loss(p, x_grp, y_grp) / b)(params)
            return _grouped(self.model, g, self.by)

        per = min(self.chunk, n_groups)
        n_chunks = n_groups // per
        rest = n_groups - n_chunks * per

        def add(acc, vals):
            return acc[0] + jnp.sum(vals, axis=0), acc[1] + jnp.sum(vals * vals, axis=0)

        def body(acc, i):
            sl = lambda a: jax.lax.dynamic_slice_in_dim(a, i * per, per)  # noqa: E731
            return add(acc, jax.vmap(one)(tuple(sl(x) for x in xs_g), sl(y_g))), None

        zero = _grouped(self.model, jax.tree_util.tree_map(jnp.zeros_like, params), self.by)
        acc, _ = jax.lax.scan(body, (zero, zero), jnp.arange(n_chunks))
        if rest:
            acc = add(acc, jax.vmap(one)(tuple(x[-rest:] for x in xs_g), y_g[-rest:]))
        mean = acc[0] / n_groups
        if not self.stderr:
            return mean
        var = jnp.maximum(acc[1] / n_groups - mean * mean, 0.0) * n_groups / max(n_groups - 1, 1)
        return mean, jnp.sqrt(var / n_groups)


def _check_samples(xs, y, model):
    if not isinstance(xs, (tuple, list)) or not xs:
        raise ValueError("xs must be a sequence with one array of samples per modality")
    n = np.shape(y)[0]
    for m, x in enumerate(xs):
        if np.shape(x)[0] != n:
            raise ValueError(f"xs[{m}] has {np.shape(x)[0]} samples, y has {n}")
    if isinstance(model, NetworkSpec):
        if len(xs) != model.n_modalities:
            raise ValueError(f"xs has {len(xs)} modalities, the network {model.n_modalities}")
        for m, (x, d) in enumerate(zip(xs, model.input_dims)):
            if np.ndim(x) != 2 or np.shape(x)[1] != d:
                raise ValueError(f"xs[{m}] must have shape (P, {d}), got {np.shape(x)}")
        if np.ndim(y) != 2 or np.shape(y)[1] != model.output_dim:
            raise ValueError(f"y must have shape (P, {model.output_dim}), got {np.shape(y)}")
    return n


def _check_chunk(chunk):
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    return int(chunk)


def fisher_sampled(model, params, xs, y, by: str = "branch", batch_size: int | None = None,
                   chunk: int = 4096, dtype="float64", stderr: bool = False):
    """Tr F of every branch (``by="branch"``: (M,)) or every parameter array (``"layer"``), the
    mean over the given samples of the squared per-sample gradient norm.

    ``model``: a NetworkSpec (loss ½‖y − ŷ‖², ``params`` a Params, ``y`` (P, d_out)) or a
    classifier with ``apply`` (cross-entropy, ``y`` integer labels (P,)). ``xs`` one array of
    samples per modality. ``batch_size=b``: the samples form ⌊P/b⌋ consecutive batches and the
    value is the mean over batches of ‖mean gradient of the batch‖² (the authors' variant).
    ``chunk``: how many gradients are held in memory at once. Unbatched ``params`` (one run).
    ``stderr=True``: return ``(value, standard error)``, the error of the mean over the
    samples (or batches), from their sample variance.
    """
    _check_by(by)
    b = _check_batch(batch_size)
    chunk = _check_chunk(chunk)
    n = _check_samples(xs, y, model)
    if b is not None and b > n:
        raise ValueError(f"batch_size {b} is larger than the number of samples {n}")
    if isinstance(model, NetworkSpec):
        batch = _check_spec_params(model, params, linear=False)
        if batch:
            raise ValueError(f"params must be one run (no batch axes), got batch shape {batch}")
    fn = jax.jit(_Sampled(model, by, b, chunk, bool(stderr)))
    out = lambda r: tuple(np.asarray(v) for v in r) if stderr else np.asarray(r)  # noqa: E731
    if dtype == "float64":
        with float64():
            cast = lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(  # noqa: E731
                jnp.asarray(a).dtype, jnp.floating) else jnp.asarray(a)
            return out(fn(jax.tree_util.tree_map(cast, params), tuple(cast(x) for x in xs),
                          cast(y)))
    if dtype != "float32":
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return out(fn(params, tuple(jnp.asarray(x) for x in xs), jnp.asarray(y)))


# ---------------------------------------------------------------------- during training
@dataclass(frozen=True)
class _FisherRecord:
    by: str
    batch_size: int | None

    def __call__(self, snap):
        mo = snap.moments
        noise = mo.sigma_yy - mo.w_star @ mo.sigma @ mo.w_star.T
        return _trace_one(snap.params, mo.sigma, noise, mo.w_star, self.by, self.batch_size)


def fisher_observable(by: str = "branch", batch_size: int | None = None,
                      spec: NetworkSpec | None = None) -> Record:
    """A Record of the closed-form Tr F (:func:`dlnfusion.rules.fisher_trace`) of the current
    weights under the run's moments, for ``train(..., observe={"fisher": ...})``; recorded as
    (*batch, T, M) (``by="branch"``) or (*batch, T, n_layers). Linear networks; exact for
    Gaussian data (at population level, the Gaussian with the run's moments; while a deficit
    is in force, the deficit's moments). Pass ``spec`` to check the network now."""
    _check_by(by)
    b = _check_batch(batch_size)
    if spec is not None:
        if not isinstance(spec, NetworkSpec):
            raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        if not spec.is_linear:
            raise ValueError("fisher_observable uses the closed form: linear networks only "
                             "(fisher_sample_observable measures any network)")
    return Record(_FisherRecord(by, b))


@dataclass(frozen=True)
class _SampleRecord:
    sampled: _Sampled

    def __call__(self, snap, data):
        xs, y = data
        return self.sampled(snap.params, xs, y)


def fisher_sample_observable(spec: NetworkSpec, xs, y, by: str = "branch",
                             batch_size: int | None = None, chunk: int = 4096) -> Record:
    """A Record of :func:`fisher_sampled` on the fixed samples (``xs``, ``y``), evaluated from
    a Snapshot's weights every ``record_every`` steps, for any NetworkSpec (linear or not)."""
    _check_by(by)
    b = _check_batch(batch_size)
    chunk = _check_chunk(chunk)
    n = _check_samples(xs, y, spec)
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if b is not None and b > n:
        raise ValueError(f"batch_size {b} is larger than the number of samples {n}")
    return Record(_SampleRecord(_Sampled(spec, by, b, chunk)),
                  (tuple(np.asarray(x) for x in xs), np.asarray(y)))
