"""Writing a reproduced figure: the JSON of its numbers and the figure as PNG and PDF."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from dlnfusion.compare import to_json

__all__ = ["write_outputs"]


def write_outputs(out, fig_id: str, payload: dict, draw: Callable, summary) -> dict:
    """Write ``out``/``fig_id``.json and the figure ``draw(stem)`` draws (it returns the paths
    it wrote); return what a figure module's ``run`` returns: the paths and the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    to_json(payload, out / f"{fig_id}.json")
    figs = draw(out / fig_id)
    return {"json": str(out / f"{fig_id}.json"), "figures": figs, "summary": summary}
