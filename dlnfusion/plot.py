"""Publication figures. All of dlnfusion's matplotlib code lives here.

One style for every figure: sans-serif 8 pt text, the Okabe–Ito colorblind-safe palette,
theory as lines and simulations as open markers with seed error bars, vector PDF plus a
300-dpi PNG. Widths follow two-column paper layouts (3.35 in single column, 6.9 in double).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["PALETTE", "SINGLE", "DOUBLE", "paper_style", "new_figure", "theory_vs_sim",
           "trajectory_panel", "phase_portrait", "sequence_portrait", "save",
           "accuracy_panel", "image_grid", "noisy_pair_examples", "table_panel", "mean_sd_text",
           "panel_label", "mode_groups", "pathway_modes_panel", "style_legend", "weight_scatter",
           "identity_panel", "error_histogram", "matrix_panel", "color_style_legend",
           "rsv_histogram_row", "seed_errorbars", "errorbar_row", "spectrum_panel",
           "curve_family", "SEQUENCE_MARKERS", "sequence_times_panel"]

#: Okabe & Ito (2008) colorblind-safe palette, black first.
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7",
           "#F0E442")
#: Figure widths in inches: a single column, a double column.
SINGLE = 3.35
DOUBLE = 6.9

_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "mathtext.fontset": "dejavusans",
}


@contextlib.contextmanager
def paper_style():
    """Context manager applying dlnfusion's figure style."""
    with plt.rc_context(_RC):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, width: float = DOUBLE, height: float = 2.3):
    """A figure with a grid of axes in the paper style (call inside :func:`paper_style`)."""
    if ncols < 1 or nrows < 1:
        raise ValueError("ncols and nrows must be positive")
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def theory_vs_sim(ax, x_line, lines, x_points=None, points=(), xlabel="", ylabel="",
                  logy=False, panel=None):
    """Theory curves and simulated markers on one axis.

    ``lines``: sequence of dicts with keys ``y`` (same length as ``x_line``, or as an own
    ``x``), ``color``, optional ``label``, ``style`` ('-', '--', ':') and ``width``. ``points``: sequence of dicts
    with ``mean``, optional ``std``, ``color``, ``label``, ``marker`` (default open circle);
    their x positions are ``x_points``.
    """
    for ln in lines:
        y = np.asarray(ln["y"], float)
        ax.plot(ln.get("x", x_line), y, ls=ln.get("style", "-"), color=ln.get("color", PALETTE[0]),
                lw=ln.get("width", 1.2), label=ln.get("label"), zorder=2)
    for pt in points:
        mean = np.asarray(pt["mean"], float)
        std = pt.get("std")
        color = pt.get("color", PALETTE[0])
        ax.errorbar(x_points, mean, yerr=None if std is None else np.asarray(std, float),
                    fmt=pt.get("marker", "o"), mfc="white", mec=color, ecolor=color,
                    mew=0.9, ms=4, capsize=1.5, elinewidth=0.6, lw=0, label=pt.get("label"),
                    zorder=3)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if panel:
        ax.text(-0.16, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
    return ax


def trajectory_panel(ax, time, loss=None, maps=None, labels=(), colors=None, panel=None,
                     xlabel="Step", loss_label="Loss"):
    """Loss (left axis, black) and total weights (right axis, colored) against time."""
    colors = colors or PALETTE[1:]
    handles = []
    if loss is not None:
        handles += ax.plot(time, loss, color=PALETTE[0], lw=1.2, label=loss_label)
        ax.set_ylabel(loss_label)
    if maps is not None:
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        for i, m in enumerate(maps):
            handles += ax2.plot(time, m, color=colors[i % len(colors)], lw=1.2,
                                label=labels[i] if i < len(labels) else None)
        ax2.set_ylabel("Total weight")
    ax.set_xlabel(xlabel)
    if panel:
        ax.text(-0.16, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
    return handles


def phase_portrait(stats, depth: int | None = None, fusion_layer: int | None = None,
                   trajectories=(), ax=None, xlim=None, ylim=None, density: float = 1.0,
                   panel=None, legend=True):
    """Flow of the total weights (W_A^tot, W_B^tot) with the fixed points and the loss.

    Streamlines of the balanced, aligned reduced dynamics
    (:func:`dlnfusion.theory.landscape.reduced_flow`; exact for two-layer networks with balanced
    weights) of a network of ``depth`` L and ``fusion_layer`` L_f, loss contours, the fixed
    points M_0 (unstable, open circle), M_* (stable, filled circle) and, when L_f ≥ 2, the
    saddles M_A, M_B (crosses, paper eqs. 6–7), and simulated trajectories on top.
    ``trajectories``: a :class:`~dlnfusion.Trajectory` (every run of its batch drawn, in one
    color per Trajectory; its total maps must be recorded, the default), or a sequence of
    Trajectories, of (W_A(t), W_B(t)) arrays or of dicts with keys ``wa``, ``wb`` and optional
    ``color``, ``label``. ``depth`` and ``fusion_layer`` default to the network of the
    Trajectories given, else to two-layer late fusion (2, 2). Two scalar modalities and a
    scalar output. Returns the matplotlib Figure (a new one unless ``ax`` is given).
    """
    from .theory import fixed_points
    from .theory.landscape import reduced_flow

    paths, net = _portrait_paths(trajectories)
    if net is not None:
        for name, given, own in (("depth", depth, net[0]), ("fusion_layer", fusion_layer,
                                                             net[1])):
            if given is not None and given != own:
                raise ValueError(f"{name}={given} but the Trajectory's network has {name} "
                                 f"{own}: the portrait's flow would be another network's; "
                                 f"leave {name} out or pass {own}")
        depth, fusion_layer = net
    depth = 2 if depth is None else depth
    fusion_layer = 2 if fusion_layer is None else fusion_layer
    fps = fixed_points(stats, fusion_layer)
    pts = np.array([m.total_map[0] for m in fps.values()])
    if xlim is None or ylim is None:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 0.5)
        xlim = xlim or (lo[0] - 0.25 * span[0], hi[0] + 0.25 * span[0])
        ylim = ylim or (lo[1] - 0.25 * span[1], hi[1] + 0.25 * span[1])
    if ax is None:
        fig, ax = plt.subplots(figsize=(SINGLE / 1.6, SINGLE / 1.6), constrained_layout=True)
    else:
        fig = ax.figure
    xs, ys = np.linspace(*xlim, 60), np.linspace(*ylim, 60)
    WA, WB = np.meshgrid(xs, ys)
    loss = np.vectorize(lambda a, b: stats.loss([[a, b]]))(WA, WB)
    ax.contour(WA, WB, loss, levels=12, colors="0.8", linewidths=0.5, zorder=1)
    dA, dB = reduced_flow(stats, depth, fusion_layer, WA, WB)
    speed = np.hypot(dA, dB)
    ax.streamplot(xs, ys, dA, dB, color=np.log10(speed + 1e-12), cmap="Greys", density=density,
                  linewidth=0.5, arrowsize=0.6, zorder=2)
    for i, t in paths:
        ax.plot(t["wa"], t["wb"], color=t.get("color", PALETTE[(i % 7) + 1]), lw=1.4,
                label=t.get("label"), zorder=4)
    style = {"M_0": dict(marker="o", mfc="white", mec="black"),
             "M_*": dict(marker="o", mfc="black", mec="black")}
    for name, m in fps.items():
        kw = style.get(name, dict(marker="X", mfc=PALETTE[4] if name.endswith("A") else PALETTE[5],
                                  mec="white", mew=0.5))
        ax.plot(*m.total_map[0], ls="", ms=7, zorder=5,
                label=rf"$\mathcal{{M}}_{{{name[2:]}}}$", **kw)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(r"$W_A^{tot}$")
    ax.set_ylabel(r"$W_B^{tot}$")
    if legend:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=0.6,
                  handletextpad=0.3, borderaxespad=0.2)
    if panel:
        ax.text(-0.25, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
    return fig


def _is_trajectory(obj) -> bool:
    """A recorded training run (dlnfusion.Trajectory or any result with total ``maps``)."""
    return hasattr(type(obj), "maps") and hasattr(obj, "spec")


def _portrait_paths(trajectories):
    """The curves of :func:`phase_portrait`: [(color index, dict with wa, wb, label)] and the
    (depth, fusion_layer) of the Trajectories among them (None if there are none)."""
    items = [trajectories] if _is_trajectory(trajectories) else list(trajectories)
    paths, nets, labeled = [], set(), False
    for i, t in enumerate(items):
        if not _is_trajectory(t):
            paths.append((i, t if isinstance(t, dict) else {"wa": t[0], "wb": t[1]}))
            continue
        try:
            maps = t.maps
        except KeyError:
            raise ValueError(f"trajectories[{i}]: the Trajectory has no recorded total maps "
                             "(observe dropped 'maps'); record them to draw its path") from None
        if len(maps) != 2 or any(np.shape(m)[-2:] != (1, 1) for m in maps):
            raise ValueError(f"trajectories[{i}]: the portrait is drawn for two scalar "
                             "modalities and a scalar output; the Trajectory's maps have "
                             f"shapes {[tuple(np.shape(m)[-2:]) for m in maps]}")
        try:
            nets.add((t.spec.depth, t.spec.fusion_layer))
        except ValueError as err:
            raise ValueError(f"trajectories[{i}]: {err}") from None
        wa = np.asarray(maps[0], float)[..., 0, 0]
        wb = np.asarray(maps[1], float)[..., 0, 0]
        wa, wb = wa.reshape(-1, wa.shape[-1]), wb.reshape(-1, wb.shape[-1])
        for r in range(wa.shape[0]):      # NaN after a run stopped: matplotlib leaves it out
            paths.append((i, {"wa": wa[r], "wb": wb[r],
                              "label": None if labeled else "simulation"}))
            labeled = True                # one legend entry for all simulated runs
    if len(nets) > 1:
        raise ValueError("trajectories: the Trajectories are of different networks "
                         f"(depth, fusion_layer) {sorted(nets)}; draw one network per portrait")
    return paths, (nets.pop() if nets else None)


def _branch_weights(stats, W):
    """Each modality's total weight from a total map W (..., d_out, d_x): the entry itself
    when the block is one number (scalar modality, one output), else its Frobenius norm.
    (..., M)."""
    W = np.asarray(W, float)
    out = []
    for sl in stats.slices:
        b = W[..., sl]
        out.append(b[..., 0, 0] if b.shape[-2:] == (1, 1)
                   else np.sqrt(np.sum(b * b, axis=(-2, -1))))
    return np.stack(out, axis=-1)


def sequence_portrait(stats, seq=None, trajectory=None, axes=None, t_end=None, panels=None,
                      title=True, legend=True):
    """The staircase of plateaus of M modalities: the loss (left panel) and each branch's total
    weight (right) against time, theory on top of simulation.

    Theory (dashed): the partial solutions of ``seq`` (a
    :class:`~dlnfusion.theory.sequence.LearningSequence`; default
    ``theory.learning_sequence(stats)``, Figure 3c's two-layer training) held between its
    predicted transition times (dotted lines), the leading-order times as grey triangles
    (deep networks, whose ``times`` are NaN, use these for the steps). ``trajectory``: one
    configuration of :func:`dlnfusion.simulate` (its runs drawn as thin lines). A branch's
    total weight is its map when the modality is one number with one output, else the
    Frobenius norm of its block. ``axes``: two matplotlib axes (default: a new figure);
    ``t_end``: the right end of the time axis (default: past the last predicted transition
    and the end of the runs).
    Returns the Figure."""
    from .theory import learning_sequence
    from .theory.sequence import plateau_loss

    if seq is None:
        seq = learning_sequence(stats)
    M = stats.n_modalities
    if len(seq.plateaus) and np.asarray(seq.plateaus[0].map).shape[-1] != stats.sigma.shape[0]:
        raise ValueError("seq does not belong to stats: its plateau maps have "
                         f"{np.asarray(seq.plateaus[0].map).shape[-1]} inputs, stats has "
                         f"{stats.sigma.shape[0]}")
    times = np.asarray(seq.times, float)
    if not np.all(np.isfinite(times)):
        times = np.asarray(seq.times_leading_order, float)
    sim = None
    if trajectory is not None:
        if not hasattr(trajectory, "maps") or not hasattr(trajectory, "loss"):
            raise ValueError("trajectory must be a Trajectory from dlnfusion.simulate (with "
                             f"loss and maps), got {type(trajectory).__name__}")
        t = np.asarray(trajectory.time, float)
        loss = np.asarray(trajectory.loss, float).reshape(-1, t.size)
        W = np.concatenate([np.asarray(m, float) for m in trajectory.maps], axis=-1)
        if W.shape[-1] != stats.sigma.shape[0]:
            raise ValueError(f"trajectory has {W.shape[-1]} inputs, stats has "
                             f"{stats.sigma.shape[0]}")
        w = _branch_weights(stats, W.reshape((-1, t.size) + W.shape[-2:]))
        sim = (t, loss, w)
    finite = times[np.isfinite(times)]
    if t_end is None:                  # past the last predicted step and the end of the runs
        t_end = 1.5 * float(finite.max()) if finite.size else 1e4
        if sim is not None:
            alive = np.any(np.isfinite(sim[1]), axis=0) & (sim[0] > 0)
            if np.any(alive):
                t_end = max(t_end, float(sim[0][alive][-1]))
    t_start = max(1.0, float(finite.min()) / 30) if finite.size else 1.0
    edges = np.concatenate([[t_start], np.clip(np.where(np.isfinite(times), times, t_end),
                                               t_start, t_end), [t_end]])
    stair_loss = np.array([plateau_loss(stats, [])] + [p.loss for p in seq.plateaus])
    stair_w = np.vstack([np.zeros(M)] + [_branch_weights(stats, p.map) for p in seq.plateaus])
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(DOUBLE, 2.4), constrained_layout=True)
    ax_l, ax_w = axes
    fig = ax_l.figure
    names = stats.names
    if sim is not None:
        t, loss, w = sim
        ok = t > 0
        for r in range(loss.shape[0]):
            ax_l.plot(t[ok], loss[r][ok], color=PALETTE[0], lw=0.9, alpha=0.6,
                      label="simulation" if r == 0 else None)
            for m in range(M):
                ax_w.plot(t[ok], w[r][ok, m], color=PALETTE[(m + 1) % len(PALETTE)], lw=0.9,
                          alpha=0.7, label=names[m] if r == 0 else None)
    ax_l.stairs(stair_loss, edges, color=PALETTE[4], ls="--", lw=1.0, label="theory: plateaus")
    for tt in seq.times:
        if np.isfinite(tt):
            ax_l.axvline(tt, color=PALETTE[4], lw=0.5, ls=":")
    lead = [tt for tt in seq.times_leading_order if np.isfinite(tt)]
    ax_l.plot(lead, [1.0] * len(lead), "v", color="0.5", ms=3, clip_on=False,
              transform=ax_l.get_xaxis_transform(), label="leading order (time)")
    for m in range(M):
        ax_w.stairs(stair_w[:, m], edges, color=PALETTE[(m + 1) % len(PALETTE)], ls="--",
                    lw=0.9, label=None if sim is not None else names[m])
    floor = stats.min_loss()
    ax_l.set_yscale("log")
    ax_l.set_ylim(max(floor, 1e-4 * stair_loss[0]) * 0.3, stair_loss[0] * 2)
    for ax in (ax_l, ax_w):
        ax.set_xscale("log")
        ax.set_xlim(t_start, t_end)
        ax.set_xlabel("step")
    ax_l.set_ylabel("loss")
    ax_w.set_ylabel("total weight $w_m$")
    if title:
        order = " → ".join(str(names[i]) for i in seq.order)
        by_norm = " → ".join(str(names[i]) for i in seq.order_by_norm)
        ax_l.set_title(f"{M} modalities: learned {order}\n(by ‖Σ_yx‖: {by_norm})", fontsize=7)
    if legend:
        ax_l.legend(fontsize=6, loc="lower left")
        ax_w.legend(fontsize=6, ncol=2, loc="upper left")
    ax_w.text(0.99, 0.02, "dashed: partial solutions", transform=ax_w.transAxes, ha="right",
              fontsize=6, color="0.3")
    for ax, p in zip((ax_l, ax_w), panels or ()):
        ax.text(-0.2, 1.02, p, transform=ax.transAxes, fontweight="bold", fontsize=9)
    return fig


def save(fig, stem) -> list:
    """Write ``stem``.png (300 dpi) and ``stem``.pdf (vector); return the two paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=300)
    fig.savefig(paths[1])
    plt.close(fig)
    return [str(p) for p in paths]


def accuracy_panel(ax, epoch, loss_over_initial=None, test_acc=None, unimodal=None,
                   level=None, colors=None, xlabel="epoch"):
    """A classifier's training curves on one axis (0 to 1.05): the training loss over its
    initial value (solid black-blue), the test accuracy with every modality (dotted) and each
    modality's unimodal test accuracy (``unimodal``: name → curve, colored), with a grey line
    at ``level``. Curves left as None are not drawn."""
    colors = colors or {}
    if loss_over_initial is not None:
        ax.plot(epoch, loss_over_initial, color=PALETTE[0], lw=1.0, label="loss / initial")
    if test_acc is not None:
        names = " & ".join(unimodal) if unimodal else "test"
        ax.plot(epoch, test_acc, ":", color=PALETTE[0], lw=1.0, label=f"{names} acc.")
    for i, (name, acc) in enumerate((unimodal or {}).items()):
        ax.plot(epoch, acc, color=colors.get(name, PALETTE[5 + i]), lw=1.0,
                label=f"{name} acc.")
    if level is not None:
        ax.axhline(level, color="0.7", lw=0.5, zorder=0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(xlabel)
    return ax


def image_grid(axes, images, titles=(), xlabels=(), vmin=None, vmax=None):
    """Grey-scale images, one per axis, without ticks; ``titles`` and ``xlabels`` (optional,
    one per image, None to skip) above and below them."""
    for k, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        if k < len(titles) and titles[k] is not None:
            ax.set_title(titles[k], fontsize=7)
        if k < len(xlabels) and xlabels[k] is not None:
            ax.set_xlabel(xlabels[k], fontsize=6, loc="left")
    return axes


def noisy_pair_examples(task, seed: int = 1, n: int = 400):
    """A figure of one training pair (A, B) of a two-image task per corruption case (B
    corrupted, A corrupted, neither; each with its probability from ``task.info``'s ``p_b``
    and ``p_a``): the task's ``corrupt`` applied with ``jax.random.PRNGKey(seed)`` to its first
    ``n`` training pairs, the first pair of each case drawn by :func:`image_grid` on the
    grey scale of modality A's images. Cases that none of the ``n`` pairs shows are left out."""
    import jax

    x = task.train_x
    idx = np.arange(min(n, task.n_train))
    xa, xb = (np.asarray(v) for v in task.corrupt(jax.random.PRNGKey(seed),
                                                   (x[0][idx], x[1][idx])))
    hit_b = ~np.all(xb == x[1][idx], axis=(1, 2))
    hit_a = ~np.all(xa == x[0][idx], axis=(1, 2))
    p_b, p_a = task.info["p_b"], task.info["p_a"]
    cases = [(f"B corrupted (p = {p_b:g})", hit_b), (f"A corrupted (p = {p_a:g})", hit_a),
             (f"neither (p = {1 - p_a - p_b:g})", ~hit_a & ~hit_b)]
    cases = [(title, int(np.argmax(mask))) for title, mask in cases if mask.any()]
    fig, axes = new_figure(ncols=2 * len(cases), width=DOUBLE * len(cases) / 3, height=1.45)
    image_grid(axes[0], [im for _, i in cases for im in (xa[i], xb[i])],
               titles=["A", "B"] * len(cases),
               xlabels=[v for title, _ in cases for v in (title, None)],
               vmin=float(np.min(x[0])), vmax=float(np.max(x[0])))
    return fig


def panel_label(ax, letter: str, x: float = -0.16, y: float = 1.02):
    """The panel's letter in bold above its upper left corner (axes coordinates)."""
    return ax.text(x, y, letter, transform=ax.transAxes, fontweight="bold", fontsize=9,
                   va="bottom")


def mode_groups(s, decimals: int = 10) -> list:
    """(value, indices) of each distinct value of ``s`` (rounded to ``decimals``), largest
    first: the modes that share a singular value (a degenerate task's) share one entry."""
    s = np.asarray(s, float)
    return [(v, np.nonzero(np.isclose(s, v))[0])
            for v in np.unique(np.round(s, decimals))[::-1]]


def pathway_modes_panel(ax, time, K, K_theory, s, window=None):
    """Two pathways' mode strengths K (time, pathway, mode) against time: one mode per
    distinct singular value of ``s`` (:func:`mode_groups`), one color each from PALETTE[1:],
    pathway a solid and b dashed; ``K_theory`` (same shape) thin black dotted; ``window``
    (start, end), if not empty, shaded (a gate)."""
    for c, (_, idx) in enumerate(mode_groups(s)):
        for p, ls in ((0, "-"), (1, "--")):
            ax.plot(time, K[:, p, idx[0]], color=PALETTE[c + 1], lw=1.3, ls=ls)
            ax.plot(time, K_theory[:, p, idx[0]], color="k", lw=0.5, ls=":")
    if window is not None and window[1] > window[0]:
        ax.axvspan(*window, color="0.85", lw=0)
    ax.set_xlim(0, time[-1])
    return ax


def style_legend(fig, entries, color="0.3", loc="outside lower center", **kwargs):
    """A legend of line styles and markers (what each style means, whatever its color), on a
    figure (or an axis). ``entries``: (style, label), (style, label, width) or (style, label,
    keywords) tuples; a style is a line style ('-', '--', ':', '-.', or a dash tuple) or a
    marker ('o' drawn open, 'x', ...); keywords (a dict) override the entry's Line2D
    properties (``ms``, ``mfc``: a filled marker, ``color``). Further keywords go to
    ``legend`` (``ncol``, ``fontsize``, ...)."""
    from matplotlib.lines import Line2D

    handles = []
    for style, label, *extra in entries:
        line = isinstance(style, tuple) or style in ("-", "--", ":", "-.")
        kw = {"ls": style} if line else {"ls": "", "marker": style, "mfc": "white"}
        for e in extra:
            kw.update(e if isinstance(e, dict) else {"lw": e})
        handles.append(Line2D([], [], **{"color": color, "label": label, **kw}))
    return fig.legend(handles=handles, loc=loc, **kwargs)


def weight_scatter(fig, ax, w_a, w_b, xlabel=True):
    """First-layer weights of a network with a scalar modality A and a two-dimensional
    modality B: each hidden unit at the position of its W_B¹ row (``w_b``, (H, 2)), colored by
    its W_A¹ weight (``w_a``, (H,)) on a symmetric diverging map with a colorbar; the two
    diagonals (the XOR directions) and the axes drawn faintly, square axes."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}".replace("-", "\u2212"))

    lim = 1.15 * max(np.max(np.abs(w_b)), 1e-12)
    tick = float(f"{0.75 * lim:.1g}")
    vmax = max(np.max(np.abs(w_a)), 1e-12)
    for d in (1, -1):
        ax.plot([-lim, lim], [-d * lim, d * lim], color="0.88", lw=0.5, zorder=0)
    ax.axhline(0, color="0.75", lw=0.4, zorder=0)
    ax.axvline(0, color="0.75", lw=0.4, zorder=0)
    sc = ax.scatter(w_b[:, 0], w_b[:, 1], c=w_a, cmap="RdBu_r", vmin=-vmax, vmax=vmax, s=8,
                    edgecolors="0.3", linewidths=0.25, zorder=3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_box_aspect(1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator([-tick, 0.0, tick]))
        axis.set_major_formatter(fmt)
    ax.tick_params(labelsize=6)
    if xlabel:
        ax.set_xlabel(r"$(W_B^1)_1$", labelpad=1)
    ax.set_ylabel(r"$(W_B^1)_2$", labelpad=1)
    cb = fig.colorbar(sc, ax=ax, fraction=0.08, pad=0.03, aspect=14, shrink=0.9)
    cb.set_label(r"$W_A^1$", labelpad=1)
    vt = float(f"{0.8 * vmax:.1g}")
    cb.set_ticks([-vt, 0.0, vt])
    cb.ax.yaxis.set_major_formatter(fmt)
    cb.ax.tick_params(labelsize=6, width=0.5, length=2)
    cb.outline.set_linewidth(0.4)


def identity_panel(ax, lo, hi, xlabel="predicted", ylabel="simulated", panel=None):
    """Finish a panel of predictions against measurements on log-log axes: the identity line
    from ``lo`` to ``hi``, both axes limited to it, the labels, a legend (upper left) and the
    panel letter."""
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.7)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=xlabel,
           ylabel=ylabel)
    ax.legend(fontsize=6, loc="upper left")
    if panel:
        ax.text(-0.2, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9)


#: Markers of :func:`sequence_times_panel` by number of modalities.
SEQUENCE_MARKERS = {2: "D", 3: "o", 4: "s", 5: "^", 6: "v"}


def sequence_times_panel(ax, cases, per_seed: bool = False, lims=(10, 1e5), panel=None):
    """Predicted against simulated transition times of learning-sequence records (dicts of
    :func:`dlnfusion.compare.sequence_case` with ``n_modalities``; with ``per_seed``, of
    :func:`~dlnfusion.compare.per_seed_sequence_case`, each run against its own prediction),
    then :func:`identity_panel` from ``lims``. Open markers by number of modalities in
    ``PALETTE[M - 2]``; crosses: outside the assumptions or with simulation notes; grey: the
    leading order against the seed mean (with ``per_seed``, for every case)."""
    from .compare import finite_seed_mean, nan_padded

    for c in cases:
        M, ok = c["n_modalities"], c["valid"] and not c["simulation_notes"]
        marker, color = SEQUENCE_MARKERS.get(M, "o"), PALETTE[(M - 2) % len(PALETTE)]
        sim = np.asarray(c["times_sim"], float)
        if ok or per_seed:
            ax.scatter(nan_padded(c["times_leading_order"], M), finite_seed_mean(sim),
                       marker=marker, color="0.75", s=9, zorder=0)
        if per_seed:
            x, y = np.ravel(c["times_theory_per_seed"]), sim.ravel()
        else:
            x, y = nan_padded(c["times_theory"], M), finite_seed_mean(sim)
        style = (dict(marker=marker, facecolors="none", edgecolors=color) if ok
                 else dict(marker="x", color=color))
        ax.scatter(x, y, s=9, linewidths=0.6, **style)
    for M in sorted({c["n_modalities"] for c in cases}):
        ax.scatter([], [], marker=SEQUENCE_MARKERS.get(M, "o"), facecolors="none", s=9,
                   edgecolors=PALETTE[(M - 2) % len(PALETTE)],
                   label=f"M = {M}" + ", closed form per seed" * per_seed)
    ax.scatter([], [], marker="o", color="0.75", s=9,
               label="leading order" + " (aligned)" * per_seed)
    if not per_seed:
        ax.scatter([], [], marker="x", color="0.3", s=9, label="outside the assumptions")
    identity_panel(ax, *lims, "predicted transition time (steps)",
                   "simulated" + " (seed mean)" * (not per_seed), panel)
    return ax


def error_histogram(ax, series, panel=None, xlabel="relative error of a transition time",
                    ylabel="transitions"):
    """Histograms of relative errors on logarithmic bins from 1e-5 to 1 (the errors clipped
    into them). ``series``: (errors, keyword arguments of ``ax.hist``) pairs, drawn in order
    (an empty one is skipped); a ``median`` entry among the keywords, a color, also marks the
    series' median with a dotted line of that color. Legend upper left, panel letter."""
    bins = np.logspace(-5, 0, 31)
    for errors, kw in series:
        errors, kw = np.asarray(errors, float), dict(kw)
        median = kw.pop("median", None)
        if errors.size:
            ax.hist(np.clip(errors, 1e-5, 1), bins=bins, **kw)
            if median is not None:
                ax.axvline(np.median(errors), color=median, lw=0.6, ls=":")
    ax.set(xscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=6, loc="upper left")
    if panel:
        ax.text(-0.2, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9)


def mean_sd_text(values, digits: int = 2) -> str:
    """``values`` (NaN: a run without a value) as "mean±s.d." for a table cell: the mean alone
    when one run has a value, "(k/n)" appended when only k of n have, "not reached" when none
    has."""
    v = np.asarray(values, float)
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return "not reached"
    txt = f"{ok.mean():.{digits}f}±{ok.std():.{digits}f}" if ok.size > 1 else \
        f"{ok.mean():.{digits}f}"
    return txt if ok.size == v.size else f"{txt} ({ok.size}/{v.size})"


def table_panel(ax, cells, col_labels, title=None, fontsize: float = 5.5):
    """A table of strings (rows of ``cells`` under ``col_labels``) filling ``ax``, whose
    frame and ticks are hidden; columns as wide as their text."""
    ax.axis("off")
    t = ax.table(cellText=cells, colLabels=col_labels, loc="center", cellLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(fontsize)
    t.auto_set_column_width(list(range(len(col_labels))))
    t.scale(1.0, 1.35)
    if title:
        ax.set_title(title, fontsize=7)
    return t


def matrix_panel(ax, M, xlabels, ylabels, title=None, highlight=None, label_colors=None,
                 fontsize: float = 6):
    """A matrix as a diverging heat map (symmetric color range) with each nonzero entry
    written in its cell, a frame around column ``highlight`` (an index, framed in
    ``label_colors[highlight]``), x tick labels colored by ``label_colors`` (one color per
    column, or None), no ticks or left/bottom spines."""
    from matplotlib.patches import Rectangle

    M = np.asarray(M, float)
    vmax = np.max(np.abs(M))
    ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="equal")
    for (i, j), v in np.ndenumerate(M):
        if v:
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=fontsize)
    if highlight is not None:
        ax.add_patch(Rectangle((highlight - 0.5, -0.5), 1, M.shape[0], fill=False,
                               ec=label_colors[highlight] if label_colors else "black", lw=2))
    ax.set_xticks(range(M.shape[1]), xlabels)
    for lbl, c in zip(ax.get_xticklabels(), label_colors or ()):
        lbl.set_color(c)
    ax.set_yticks(range(M.shape[0]), ylabels)
    if title:
        ax.set_title(title, fontsize=8)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def color_style_legend(ax, styles=(), colors=None, names=None, **kwargs):
    """A compact legend on an axis: one solid line per color (``colors``: key -> color,
    ``names``: key -> label, e.g. one per deficit), then one gray entry per
    (line style, marker, label) of ``styles`` (what each quantity's style means). Further
    keywords go to ``legend`` (``loc``, ``bbox_to_anchor``, ``ncol``, ...)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=1.2, label=(names or {}).get(k, k))
               for k, c in (colors or {}).items()]
    handles += [Line2D([], [], color="0.3", ls=ls, marker=m, ms=3, lw=0.9, label=lab)
                for ls, m, lab in styles]
    return ax.legend(handles=handles, **{"fontsize": 5.5, "handlelength": 2.2, **kwargs})


def seed_errorbars(ax, x, series, color, **kwargs):
    """One error-bar curve per (values, line style, marker) of ``series``: at each point of
    ``x`` the mean ± sample standard deviation (0 for one value) of ``values``' entry there
    (its values over seeds), in ``color``. Further keywords go to ``errorbar`` (``ms``,
    ``capsize``, ``lw``, ...)."""
    for values, ls, marker in series:
        stats = []
        for v in values:
            v = np.asarray(v, float)
            stats.append((np.mean(v), np.std(v, ddof=1) if v.size > 1 else 0.0))
        mean, sd = np.array(stats).T
        ax.errorbar(x, mean, yerr=sd, color=color, ls=ls, marker=marker, **kwargs)


def rsv_histogram_row(fig, cells, histograms, titles, color, ylabel, notes=(), ylim=(0, 0.45),
                      xlabel="RSV (+1: view A only, −1: view B only)"):
    """A row of RSV histograms on [−1, 1], one per cell of ``cells`` (a subgridspec):
    ``histograms`` the fractions of units per equal bin, ``titles`` and ``notes`` (a line in
    the upper left corner) per panel; the y label on the first panel, the x label under the
    middle one. Returns the axes."""
    axes = []
    for j, hist in enumerate(histograms):
        ax = fig.add_subplot(cells[j])
        edges = np.linspace(-1, 1, len(hist) + 1)
        ax.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color=color,
               edgecolor="white", lw=0.3)
        ax.set_xlim(-1, 1)
        ax.set_ylim(*ylim)
        ax.set_title(titles[j], fontsize=7)
        ax.set_xticks([-1, 0, 1])
        ax.set_xticklabels(["−1", "0", "1"], fontsize=6)
        if j:
            ax.set_yticklabels([])
        else:
            ax.set_ylabel(ylabel)
        if j < len(notes):
            ax.text(0.03, 0.95, notes[j], transform=ax.transAxes, fontsize=6, va="top")
        axes.append(ax)
    axes[len(axes) // 2].set_xlabel(xlabel)
    return axes


def errorbar_row(axes, x, stats, labels, titles=(), xlabel="", ylabel=""):
    """A row of panels of mean ± s.d. curves against ``x`` on one log y range shared by the row
    (so that its panels compare by eye): ``stats[i][j]`` is the (mean, s.d.) of curve j in
    panel i, labelled ``labels[j]`` in the first panel's legend; ``titles`` per panel."""
    means = np.concatenate([np.asarray(m, float) for row in stats for m, _ in row])
    means = means[np.isfinite(means) & (means > 0)]
    for i, (ax, row) in enumerate(zip(axes, stats)):
        for j, ((mean, sd), label) in enumerate(zip(row, labels)):
            ax.errorbar(x, mean, yerr=sd, color=PALETTE[(j + 1) % len(PALETTE)], marker="o",
                        ms=2.5, lw=1.0, capsize=1.5, elinewidth=0.6, label=label)
        ax.set_yscale("log", nonpositive="clip")
        if means.size:
            ax.set_ylim(means.min() / 3, means.max() * 3)
        if i < len(titles):
            ax.set_title(titles[i], fontsize=7)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=6, handlelength=1.5)
    return axes


def spectrum_panel(ax, time, values, top: int, shown: int = 15, switch=None,
                   ylim=(1e-3, 2e2), xlabel="step (thousands)", ylabel="singular values"):
    """Singular values against ``time`` (``values``: (k, time), largest first) on a log scale:
    the first ``top`` in color, the next ones (up to ``shown`` in all) in gray, and a dashed
    line at ``switch`` (a task's change, if given)."""
    values = np.asarray(values, float)
    shown = min(values.shape[0], shown)
    for i in range(shown):
        ax.plot(time, values[i], lw=0.8, color=PALETTE[5] if i < top else "0.55", label=(
            f"top {top}" if i == 0 else f"next {shown - top}" if i == top else None))
    ax.legend(fontsize=6, handlelength=1.2, loc="lower right")
    if switch is not None:
        ax.axvline(switch, color=PALETTE[4], ls="--", lw=0.7)
    ax.set(yscale="log", ylim=ylim, xlabel=xlabel, ylabel=ylabel)
    return ax


def curve_family(ax, x, curves, labels, cmap: str = "viridis", lw: float = 0.8):
    """A family of curves against ``x`` (one parameter's values, in order), colored along the
    colormap ``cmap`` from the first to the last, labelled ``labels``."""
    colors = plt.get_cmap(cmap)
    for j, (y, label) in enumerate(zip(curves, labels)):
        ax.plot(x, y, lw=lw, label=label, color=colors(j / max(len(curves) - 1, 1)))
    return ax
