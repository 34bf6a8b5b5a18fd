"""What every figure module shares: running its sweeps into its folder, and writing the JSON of
its numbers and the figure as PNG and PDF."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from dlnfusion.compare import to_json

__all__ = ["run_sweeps", "write_outputs"]


def run_sweeps(sweeps: dict, out, fig_id: str, quick: bool, suffix: str = "") -> dict:
    """Run (or resume) every sweep of ``sweeps`` (name → :class:`~dlnfusion.sweep.Sweep`) in
    ``out``/``fig_id``/{quick,full}``suffix``/name; their Datasets by name."""
    folder = Path(out) / fig_id / (("quick" if quick else "full") + suffix)
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps.items()}


def write_outputs(out, fig_id: str, payload: dict, draw: Callable, summary) -> dict:
    """Write ``out``/``fig_id``.json and the figure ``draw(stem)`` draws (it returns the paths
    it wrote); return what a figure module's ``run`` returns: the paths and the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    to_json(payload, out / f"{fig_id}.json")
    figs = draw(out / fig_id)
    return {"json": str(out / f"{fig_id}.json"), "figures": figs, "summary": summary}
