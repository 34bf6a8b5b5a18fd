"""The tutorials of docs/tutorials/ run, and their checks of theory against simulation pass.

Each tutorial is a notebook kept as Markdown (jupytext's Markdown format): jupytext reads it,
and its code cells run in order in one fresh namespace, inside a temporary working folder (a
tutorial writes only there), in quick mode (``DLNFUSION_QUICK=1``: fewer seeds, grid points or
noise paths; each tutorial reads the switch in its first cell). A tutorial ends with a code cell
of ``assert`` statements, so a tutorial whose theory and simulation part ways fails here.
"""
import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "tutorials"
TUTORIALS = sorted(p.name for p in FOLDER.glob("*.md") if p.name != "index.md")


def _code_cells(name):
    notebook = jupytext.read(FOLDER / name)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_every_tutorial_is_listed_in_the_index_and_the_site():
    assert len(TUTORIALS) >= 5, TUTORIALS
    index = (FOLDER / "index.md").read_text(encoding="utf-8")
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in TUTORIALS:
        assert f"]({name})" in index, f"docs/tutorials/index.md does not link {name}"
        assert f"tutorials/{name}" in nav, f"mkdocs.yml's nav does not list tutorials/{name}"


@pytest.mark.parametrize("name", TUTORIALS)
def test_the_tutorial_has_a_quick_switch_and_ends_with_a_check(name):
    cells = _code_cells(name)
    assert len(cells) >= 3, f"{name}: {len(cells)} code cells (is the jupytext header there?)"
    assert re.search(r"QUICK\s*=\s*os\.environ\.get\(\"DLNFUSION_QUICK\"", cells[0]), (
        f"{name}: the first code cell must define QUICK from DLNFUSION_QUICK")
    last = ast.parse(cells[-1])
    assert any(isinstance(node, ast.Assert) for node in ast.walk(last)), (
        f"{name}: the last code cell must check theory against simulation with assert")


@pytest.mark.parametrize("name", TUTORIALS)
def test_the_tutorial_runs_in_quick_mode(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DLNFUSION_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for k, source in enumerate(_code_cells(name), start=1):
        exec(compile(source, f"docs/tutorials/{name}, code cell {k}", "exec"), namespace)
    import matplotlib.pyplot as plt
    plt.close("all")
