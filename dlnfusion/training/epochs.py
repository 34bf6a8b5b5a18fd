"""Mini-batch training on samples: epochs of shuffled batches, optax optimizers, records per
epoch.

:func:`fit` trains one network from several seeds at once. Everything runs inside one compiled
function per chunk of epochs: a ``lax.scan`` over epochs, and in each epoch a ``lax.scan`` over
batches, vmapped over seeds. The host sees the records when a chunk ends (to print progress), so
there is no Python loop and no host synchronization per step.

Per seed, ``jax.random.fold_in(PRNGKey(seed), ·)`` gives the initialization, and for every epoch
the shuffling and the corruption of its batches; the numbers therefore do not depend on how the
epochs are chunked. The last batch of an epoch is shorter when the batch size does not divide the
number of samples (as PyTorch's ``DataLoader`` without ``drop_last``): it is padded and masked, so
every batch loss is the mean over its real samples.

Records (at epoch 0, before training, and after every ``record_every`` epochs): the training
loss (at epoch 0 the loss of the initial network on one corrupted pass over the training set;
afterwards the mean of the batch losses of the last epoch, as the usual training curve), the
test accuracy with every modality present, and the unimodal test accuracy of each modality, for
which the other modalities receive a blank input (zeros, the mean image after standardization).
"""
from __future__ import annotations

import dataclasses
import functools
from functools import partial
from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import checks
from ..data.tasks import FusionTask
from ..results import Run, Status
from ..interventions.schedule import Deficit, Gate, Lesion, _times
from ..networks.classifiers import _check_shapes, branch_parameters

__all__ = ["fit", "History", "sgd", "FIT_LOSSES"]


def _cross_entropy(out, y):
    return optax.softmax_cross_entropy_with_integer_labels(out, y)


def _squared(out, y):
    return 0.5 * jnp.sum((out - y) ** 2, axis=-1)


def _logistic(out, y):
    return jnp.sum(jax.nn.softplus(-y * out), axis=-1)


#: Per-sample losses :func:`fit` accepts, by name: cross-entropy on integer labels (softmax over
#: the outputs), ½‖ŷ − y‖² and the logistic loss ln(1 + e^{−yŷ}) for targets y = ±1.
FIT_LOSSES = {"cross_entropy": _cross_entropy, "squared": _squared, "logistic": _logistic}


def sgd(lr: float, *, momentum: float = 0.0, weight_decay: float = 0.0,
        lr_decay: float = 1.0, steps_per_epoch: int = 1) -> optax.GradientTransformation:
    """PyTorch-style SGD as an optax transformation: the weight decay is added to the gradient,
    then heavy-ball momentum (v ← μv + g, p ← p − ηv), and the learning rate is multiplied by
    ``lr_decay`` after every epoch of ``steps_per_epoch`` steps (``StepLR(step_size=1)``).

    The same arguments return the same object, so repeated :func:`fit` calls with the same
    network, task and settings reuse the compiled training loop."""
    return _sgd(float(lr), float(momentum), float(weight_decay), float(lr_decay),
                int(steps_per_epoch))


@functools.lru_cache(maxsize=64)
def _sgd(lr, momentum, weight_decay, lr_decay, steps_per_epoch):
    for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                    ("lr_decay", lr_decay)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if not 0.0 < lr_decay <= 1.0:
        raise ValueError(f"lr_decay must lie in (0, 1], got {lr_decay!r}")
    schedule = lr if lr_decay == 1.0 else optax.exponential_decay(
        lr, transition_steps=int(steps_per_epoch), decay_rate=lr_decay, staircase=True)
    parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    parts.append(optax.sgd(schedule, momentum=momentum or None))
    return optax.chain(*parts)


@dataclass(frozen=True, eq=False)
class History(Run):
    """What :func:`fit` records, seeds first (a :class:`~dlnfusion.results.Run`).

    ``time`` (T,) the recorded times in SGD steps (``epoch`` × steps per epoch); ``epoch``
    (T,) the same records in epochs; ``train_loss``, ``test_acc`` (S, T); ``unimodal_acc``
    (S, M, T), modality order as ``names``; ``status`` (S,) :class:`~dlnfusion.results.Status`
    codes: ``DIVERGED`` for seeds whose loss became non-finite (their parameters froze at the
    last finite step and their later records are NaN), ``CONVERGED`` when ``fit``'s ``stop``
    rule ended training early, ``MAX_STEPS`` otherwise; ``params`` the final parameters
    (leaves with a leading seed axis); ``seeds`` (S,)."""

    time: np.ndarray
    epoch: np.ndarray
    train_loss: np.ndarray
    test_acc: np.ndarray
    unimodal_acc: np.ndarray
    status: np.ndarray
    params: object
    seeds: np.ndarray
    names: tuple

    _static = ("epoch", "names")


def _sliced_sum(fn, arrays, batch):
    """Σ of ``fn(slices, valid)`` over consecutive slices of ``batch`` samples of ``arrays``
    (the last slice padded; ``valid`` masks the padding), so that evaluation never holds more
    than one slice of activations."""
    n = arrays[0].shape[0]
    b = min(batch, n)
    nb = -(-n // b)
    padded = [jnp.pad(a, [(0, nb * b - n)] + [(0, 0)] * (a.ndim - 1)) for a in arrays]

    def one(i):
        sl = [jax.lax.dynamic_slice_in_dim(a, i * b, b) for a in padded]
        return fn(sl, (i * b + jnp.arange(b)) < n)

    return jnp.sum(jax.lax.map(one, jnp.arange(nb)))


def _accuracy(model, params, xs, y, batch):
    """Test accuracy, evaluated in slices of ``batch`` samples."""
    def hits(sl, valid):
        out = model.apply(params, tuple(sl[:-1]))
        return jnp.sum((jnp.argmax(out, -1) == sl[-1]) & valid)

    return _sliced_sum(hits, list(xs) + [y], batch) / y.shape[0]


def _evaluate(model, params, test_x, test_y, batch, classify):
    if not classify:
        nan = jnp.full((), jnp.nan)
        return nan, jnp.full((len(test_x),), jnp.nan)
    acc = _accuracy(model, params, test_x, test_y, batch)
    uni = []
    for m in range(len(test_x)):
        blank = tuple(x if k == m else jnp.zeros_like(x) for k, x in enumerate(test_x))
        uni.append(_accuracy(model, params, blank, test_y, batch))
    return acc, jnp.stack(uni)


def _per_sample_loss(model, loss_fn, params, xs, y):
    """The task loss of every sample, plus the model's auxiliary loss when it has one
    (``model.auxiliary_loss(params, xs)``, e.g. cross-source reconstruction)."""
    per = loss_fn(model.apply(params, xs), y)
    aux = getattr(model, "auxiliary_loss", None)
    return per if aux is None else per + aux(params, xs)


def _with_deficits(windows, names, key, on, xs, y, pool_x, pool_y):
    """The batch (xs, y) with every deficit window that is on (``on`` (K,) booleans) applied."""
    for k, (kind, transform) in enumerate(windows):
        if kind != "deficit":
            continue
        dx, dy = transform(jax.random.fold_in(key, 1 + k), xs, y, pool_x, pool_y, names)
        xs = tuple(jnp.where(on[k], a, b) for a, b in zip(dx, xs))
        y = jnp.where(on[k], dy, y)
    return xs, y


@partial(jax.jit, static_argnames=("model", "loss_fn", "optimizer", "corrupt", "batch_size",
                                   "n_epochs", "record_every", "eval_batch", "classify",
                                   "windows", "names"))
def _chunk(carry, first_epoch, data, *, model, loss_fn, optimizer, corrupt, batch_size,
           n_epochs, record_every, eval_batch, classify, windows=(), names=()):
    train_x, train_y, test_x, test_y = data
    n = train_y.shape[0]
    nb = -(-n // batch_size)
    pad = nb * batch_size - n

    def batch_loss(params, key, idx, mask, on):
        xs, y = tuple(x[idx] for x in train_x), train_y[idx]
        if any(kind == "deficit" for kind, _ in windows):
            xs, y = _with_deficits(windows, names, key, on, xs, y, train_x, train_y)
        if corrupt is not None:
            xs = corrupt(key, xs)
        per = _per_sample_loss(model, loss_fn, params, xs, y)
        return jnp.sum(per * mask) / jnp.sum(mask), (xs, y)

    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)
    gates = [(k, leaves) for k, (kind, leaves) in enumerate(windows) if kind == "gate"]

    def frozen_leaves(on, n_leaves):
        """Per parameter: whether an active gate freezes it (None without gates)."""
        if not gates:
            return None
        out = [jnp.zeros((), bool)] * n_leaves
        for k, leaves in gates:
            for i in leaves:
                out[i] = out[i] | on[k]
        return out

    def where_frozen(frozen, a, b):
        """``a`` where frozen, else ``b``, leaf by leaf."""
        la, tree = jax.tree_util.tree_flatten(a)
        lb = jax.tree_util.tree_leaves(b)
        return jax.tree_util.tree_unflatten(
            tree, [jnp.where(f, x, y) for f, x, y in zip(frozen, la, lb)])

    def one_seed_epoch(state, const, epoch):
        params, opt_state, dead = state
        base_key, w_start, w_end = const
        on = (w_start <= epoch) & (epoch < w_end)
        key = jax.random.fold_in(jax.random.fold_in(base_key, 1), epoch)
        kp, kc = jax.random.split(key)
        perm = jax.random.permutation(kp, n)
        perm = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(nb, batch_size)
        mask = (jnp.arange(nb * batch_size) < n).astype(jnp.float32).reshape(nb, batch_size)
        keys = jax.random.split(kc, nb)

        def step(s, inp):
            params, opt_state, dead, total = s
            idx, m, k = inp
            (loss, (xs_b, y_b)), g = grad_fn(params, k, idx, m, on)
            frozen = frozen_leaves(on, len(jax.tree_util.tree_leaves(g)))
            if frozen is not None:   # a gated parameter receives no gradient ...
                g = where_frozen(frozen, jax.tree_util.tree_map(jnp.zeros_like, g), g)
            if extra_args:   # per-branch methods read the batch (dlnfusion.transforms)
                updates, new_opt = optimizer.update(g, opt_state, params,
                                                    batch=(xs_b, y_b, m), epoch=epoch)
            else:
                updates, new_opt = optimizer.update(g, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if frozen is not None:   # ... and does not move (momentum and decay included)
                new_params = where_frozen(frozen, params, new_params)
            bad = dead | ~jnp.isfinite(loss) | ~jnp.all(jnp.stack(
                [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(new_params)]))
            keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
                lambda a, b: jnp.where(bad, b, a), new, old)
            return (keep(new_params, params), keep(new_opt, opt_state), bad,
                    total + loss * jnp.sum(m)), None

        (params, opt_state, dead, total), _ = jax.lax.scan(
            step, (params, opt_state, dead, jnp.zeros((), jnp.float32)), (perm, mask, keys))
        return (params, opt_state, dead), jnp.where(dead, jnp.nan, total / n)

    def record(params, dead):
        acc, uni = _evaluate(model, params, test_x, test_y, eval_batch, classify)
        return jnp.where(dead, jnp.nan, acc), jnp.where(dead, jnp.nan, uni)

    def epoch_body(c, e):
        states, keys = c
        epoch = first_epoch + e
        states, losses = jax.vmap(one_seed_epoch, in_axes=(0, 0, None))(states, keys, epoch)
        return (states, keys), losses

    def block(c, r):
        (states, keys), losses = jax.lax.scan(
            epoch_body, c, r * record_every + jnp.arange(record_every))
        acc, uni = jax.vmap(record)(states[0], states[2])
        return (states, keys), (losses[-1], acc, uni)

    carry, recs = jax.lax.scan(block, carry, jnp.arange(n_epochs // record_every))
    return carry, recs


@partial(jax.jit, static_argnames=("model", "loss_fn", "optimizer", "corrupt", "eval_batch",
                                   "classify"))
def _start(keys, params, data, *, model, loss_fn, optimizer, corrupt, eval_batch, classify):
    train_x, train_y, test_x, test_y = data

    def one(key, params):
        xs = train_x
        if corrupt is not None:
            xs = corrupt(jax.random.fold_in(key, 2), xs)

        def losses(sl, valid):
            per = _per_sample_loss(model, loss_fn, params, tuple(sl[:-1]), sl[-1])
            return jnp.sum(jnp.where(valid, per, 0.0))

        loss0 = _sliced_sum(losses, list(xs) + [train_y], eval_batch) / train_y.shape[0]
        acc, uni = _evaluate(model, params, test_x, test_y, eval_batch, classify)
        return params, optimizer.init(params), loss0, acc, uni

    return jax.vmap(one)(keys, params)


def _merge(runs) -> History:
    """Histories of single seeds as one, padded with NaN to the longest."""
    longest_run = max(runs, key=lambda h: h.epoch.size)
    longest, longest_time = longest_run.epoch, longest_run.time

    def pad(a):
        width = [(0, 0)] * (a.ndim - 1) + [(0, longest.size - a.shape[-1])]
        return np.pad(a.astype(float), width, constant_values=np.nan)

    return History(longest_time, longest, np.concatenate([pad(h.train_loss) for h in runs]),
                   np.concatenate([pad(h.test_acc) for h in runs]),
                   np.concatenate([pad(h.unimodal_acc) for h in runs]),
                   np.concatenate([h.status for h in runs]),
                   jax.tree_util.tree_map(lambda *a: np.concatenate(a), *[h.params for h in runs]),
                   np.concatenate([h.seeds for h in runs]), runs[0].names)


def _gate_groups(model, params, names) -> dict:
    """Group name -> the indices (in ``jax.tree_util.tree_leaves`` order) of the parameters a
    Gate on it freezes: each modality's branch (:func:`~dlnfusion.networks.branch_parameters`)
    and "post", every parameter of the network after fusion (a model's decoders are in no
    group)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    index = jax.tree_util.tree_unflatten(treedef, list(range(len(leaves))))
    branches = branch_parameters(model, index)
    groups = {name: tuple(sorted(jax.tree_util.tree_leaves(b)))
              for name, b in zip(names, branches)}
    net = index["net"] if isinstance(index, dict) and "net" in index and \
        getattr(model, "base", None) is not None else index
    taken = {i for g in groups.values() for i in g}
    groups["post"] = tuple(i for i in jax.tree_util.tree_leaves(net) if i not in taken)
    return groups


def _fit_windows(interventions, task, S, model, params):
    """The static description of the windows (per window: ("deficit", batch transform) or
    ("gate", frozen leaf indices)) and their (S, K) start and end epochs."""
    if interventions is None:
        interventions = ()
    if isinstance(interventions, (Deficit, Gate, Lesion)) or \
            not isinstance(interventions, (list, tuple)):
        raise ValueError("interventions must be a list of Deficit and Gate windows")
    windows, starts, ends = [], [], []
    groups = None
    for k, w in enumerate(interventions):
        if isinstance(w, Gate):
            if groups is None:
                try:
                    groups = _gate_groups(model, params, task.names)
                except ValueError as exc:
                    raise ValueError(f"interventions: window {k} is a Gate, which needs a model "
                                     "with branches (FusionMLP, FusionCNN or a model wrapping "
                                     f"one): {exc}") from None
            if not isinstance(w.group, str) or w.group not in groups:
                raise ValueError(f"window {k}: group must be one of {tuple(groups)}, got "
                                 f"{w.group!r}")
            windows.append(("gate", groups[w.group]))
        elif isinstance(w, Deficit):
            d = w.data
            if not (callable(d) and callable(getattr(d, "check", None))):
                raise ValueError(f"interventions: window {k}'s data must be a batch transform "
                                 "(ImageBlur, ViewDissociation), got "
                                 f"{type(d).__name__}")
            try:
                hash(d)
            except TypeError as exc:
                raise ValueError(f"interventions: window {k}'s transform must be hashable (a "
                                 "frozen dataclass)") from exc
            d.check(task)
            windows.append(("deficit", d))
        else:
            raise ValueError(f"interventions: fit takes Deficit and Gate windows (window {k} is "
                             f"a {type(w).__name__}); lesions of modes and units act on the "
                             "linear networks of dlnfusion.train")
        a, b = _times("start", k, w.start, S, False), _times("end", k, w.end, S, False)
        for name, v in (("start", a), ("end", b)):
            if np.any(v < 0) or np.any(v != np.round(v)):
                raise ValueError(f"window {k}: {name} must be a whole number of epochs >= 0, "
                                 f"got {getattr(w, name)!r}")
        if np.any(a > b):
            raise ValueError(f"window {k}: start must not exceed end, got start {w.start!r}, "
                             f"end {w.end!r}")
        starts.append(a)
        ends.append(b)
    st = np.stack(starts, 1) if starts else np.zeros((S, 0))
    en = np.stack(ends, 1) if ends else np.zeros((S, 0))
    data = [k for k, (kind, _) in enumerate(windows) if kind == "deficit"]
    for n, i in enumerate(data):
        for j in data[n + 1:]:
            both = (st[:, i] < en[:, j]) & (st[:, j] < en[:, i])
            if np.any(both & (st[:, i] < en[:, i]) & (st[:, j] < en[:, j])):
                raise ValueError(f"interventions: deficit windows {i} and {j} overlap (which "
                                 "data is in force would be ambiguous)")
    return tuple(windows), st.astype(np.int64), en.astype(np.int64)


def fit(model, task: FusionTask, seeds: Sequence[int] = (0,), *, epochs: int,
        batch_size: int = 1000, lr: float = 0.04, momentum: float = 0.0,
        weight_decay: float = 0.0, lr_decay: float = 1.0,
        optimizer: Callable | optax.GradientTransformation | None = None,
        loss: str = "cross_entropy", record_every: int = 1, chunk_epochs: int | None = None,
        progress: Callable | None = None, stop: Callable | None = None,
        eval_batch: int = 1000, batch_seeds: bool = True,
        interventions: Sequence | None = None) -> History:
    """Train ``model`` (a :class:`~dlnfusion.networks.FusionMLP`, a
    :class:`~dlnfusion.networks.FusionCNN`, or any object with ``init(key)`` and
    ``apply(params, xs)``) on ``task`` with mini-batch SGD, once per seed, in float32.

    The update is :func:`sgd` (``lr``, ``momentum``, ``weight_decay``, and ``lr_decay`` applied
    per epoch), or ``optimizer``: an optax ``GradientTransformation``, or a function of the
    learning rate ``lr`` returning one, as for :func:`dlnfusion.train` (a schedule that counts
    epochs counts ceil(n_train / batch_size) steps per epoch). ``loss`` names a
    per-sample loss in :data:`FIT_LOSSES`. ``chunk_epochs`` epochs run per compiled call
    (default: all); after each, ``progress(epochs_done, history_so_far)`` is called if given,
    and training ends early when ``stop(history_so_far)`` returns True (the history then ends at
    that chunk). ``batch_seeds=False`` trains the seeds one after another (same numbers; for
    convolutional networks on CPU, where one seed at a time runs faster than a vmapped batch;
    histories that stop early are padded with NaN). Returns a :class:`History`.

    ``interventions``: windows over the epochs start ≤ epoch < end (start and end: a whole
    number, or one per seed, so a sweep over deficit lengths is one compiled batch; seeds may
    repeat). :class:`~dlnfusion.interventions.Deficit` windows whose ``data`` is a batch
    transform (:class:`~dlnfusion.interventions.ImageBlur`,
    :class:`~dlnfusion.interventions.ViewDissociation`) act on every training batch, before
    the task's own corruption (the epoch-0 record and the test accuracies use clean data);
    :class:`~dlnfusion.interventions.Gate` windows freeze a group of parameters (a modality's
    branch, :func:`~dlnfusion.networks.branch_parameters`, or ``"post"``, the network after
    fusion): no gradient, no update, optimizer momentum included.

    A model with an ``auxiliary_loss(params, xs)`` method (per-sample values, e.g.
    :class:`~dlnfusion.networks.CrossReconstruction`) trains on the task loss plus it, and the
    recorded training loss includes it.
    """
    if not isinstance(task, FusionTask):
        raise ValueError(f"task must be a FusionTask, got {type(task).__name__}")
    if loss not in FIT_LOSSES:
        raise ValueError(f"loss must be one of {tuple(FIT_LOSSES)}, got {loss!r}")
    classify = loss == "cross_entropy"
    if classify and task.n_classes < 2:
        raise ValueError("loss 'cross_entropy' needs a classification task (n_classes >= 2)")
    if not classify and task.n_classes:
        raise ValueError(f"loss {loss!r} needs real-valued targets; the task has class labels "
                         "(use loss='cross_entropy')")
    seeds = checks.seeds(seeds)
    if stop is not None and not callable(stop):
        raise ValueError(f"stop must be None (train all epochs) or a function of the History "
                         f"so far returning a bool, got {stop!r}")
    epochs = checks.positive_int("epochs", epochs)
    batch_size = checks.positive_int("batch_size", batch_size)
    if batch_size > task.n_train:
        raise ValueError(f"batch_size must be at most the number of training samples "
                         f"({task.n_train}), got {batch_size}")
    record_every = checks.positive_int("record_every", record_every)
    if epochs % record_every:
        raise ValueError(f"epochs ({epochs}) must be a multiple of record_every ({record_every})")
    chunk = epochs if chunk_epochs is None else checks.positive_int("chunk_epochs", chunk_epochs)
    if chunk % record_every:
        raise ValueError(f"chunk_epochs ({chunk}) must be a multiple of record_every "
                         f"({record_every})")
    eval_batch = checks.positive_int("eval_batch", eval_batch)
    _check_shapes(model, task.input_shapes)
    steps = -(-task.n_train // batch_size)
    if optimizer is None:
        if not np.isfinite(lr):
            raise ValueError(f"lr must be finite, got {lr!r}")
        opt = sgd(lr, momentum=momentum, weight_decay=weight_decay, lr_decay=lr_decay,
                  steps_per_epoch=steps)
    elif isinstance(optimizer, optax.GradientTransformation):
        opt = optimizer
    elif callable(optimizer):
        opt = optimizer(lr)
        if not isinstance(opt, optax.GradientTransformation):
            raise ValueError("optimizer(lr) must return an optax GradientTransformation")
    else:
        raise ValueError("optimizer must be an optax GradientTransformation, a function of the "
                         "learning rate returning one, or None")

    template = jax.eval_shape(model.init, jax.random.PRNGKey(0))   # shapes only, no draws
    windows, w_start, w_end = _fit_windows(interventions, task, len(seeds), model, template)

    if not batch_seeds and len(seeds) > 1:
        def one(i):
            wins = [dataclasses.replace(w, start=w_start[i, k], end=w_end[i, k])
                    for k, w in enumerate(interventions or ())]
            return fit(model, task, [seeds[i]], epochs=epochs, batch_size=batch_size,
                       optimizer=opt, loss=loss, record_every=record_every, chunk_epochs=chunk,
                       progress=progress, stop=stop, eval_batch=eval_batch, interventions=wins)
        return _merge([one(i) for i in range(len(seeds))])
    data = (tuple(jnp.asarray(x) for x in task.train_x), jnp.asarray(task.train_y),
            tuple(jnp.asarray(x) for x in task.test_x), jnp.asarray(task.test_y))
    loss_fn = FIT_LOSSES[loss]
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    static = dict(model=model, loss_fn=loss_fn, optimizer=opt, corrupt=task.corrupt,
                  eval_batch=eval_batch, classify=classify)
    # The initial weights outside the compiled start: op by op, every random draw is a small
    # program cached per shape across networks, while inside one program the unrolled
    # generators of every layer cost seconds of compilation (the same numbers either way).
    inits = [model.init(jax.random.fold_in(k, 0)) for k in keys]
    params0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *inits)
    params, opt_state, loss0, acc0, uni0 = _start(keys, params0, data, **static)
    const = (keys, jnp.asarray(w_start, jnp.int32), jnp.asarray(w_end, jnp.int32))
    carry = ((params, opt_state, jnp.zeros(len(seeds), bool)), const)
    losses, accs, unis = [np.asarray(loss0)[:, None]], [np.asarray(acc0)[:, None]], \
        [np.asarray(uni0)[:, :, None]]
    done = 0
    names = task.names

    def history(carry_now, upto, stopped=False):
        t = np.arange(0, upto + 1, record_every)
        dead = np.asarray(carry_now[0][2])
        status = np.where(dead, Status.DIVERGED,
                          Status.CONVERGED if stopped else Status.MAX_STEPS).astype(np.int8)
        return History(t * steps, t, np.concatenate(losses, 1), np.concatenate(accs, 1),
                       np.concatenate(unis, 2), status,
                       jax.tree_util.tree_map(np.asarray, carry_now[0][0]), np.asarray(seeds),
                       names)

    while done < epochs:
        n_ep = min(chunk, epochs - done)
        carry, (l, a, u) = _chunk(carry, jnp.asarray(done), data, **static,
                                  batch_size=batch_size, n_epochs=n_ep,
                                  record_every=record_every, windows=windows, names=names)
        losses.append(np.asarray(l).T)
        accs.append(np.asarray(a).T)
        unis.append(np.moveaxis(np.asarray(u), 0, -1))
        done += n_ep
        if progress is not None or stop is not None:
            so_far = history(carry, done)
            if progress is not None:
                progress(done, so_far)
            if stop is not None and done < epochs and stop(so_far):
                return history(carry, done, stopped=True)
    return history(carry, epochs)
