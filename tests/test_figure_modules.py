"""The shape every figure module keeps: its configuration, the sweeps it runs, and the drawing
from their Datasets. The checks read the modules' source (AST), so they cost nothing to run."""
import ast
import importlib
import inspect

import pytest

from dlnfusion import cli

#: The ceiling on a figure module's length: configuration, sweeps, JSON and drawing fit in it;
#: what is longer has library code in it.
MAX_LINES = 200
#: Entry points that train or simulate: a figure reaches them only through its sweeps' runners.
RUNNERS = {"train", "simulate", "fit", "train_completion", "train_reconstruction"}
#: Modules that hold training, reduced dynamics or the raw transforms.
LIBRARY_INTERNALS = ("dlnfusion.training", "dlnfusion.reduced", "dlnfusion.transforms",
                     "dlnfusion.networks", "jax")

MODULES = sorted(cli.FIGURES.items())


def _tree(module_name):
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    return source, ast.parse(source)


@pytest.mark.parametrize("fig_id,module_name", MODULES)
def test_figure_module_is_thin(fig_id, module_name):
    source, tree = _tree(module_name)
    lines = len(source.splitlines())
    assert lines <= MAX_LINES, f"{fig_id}: {lines} lines (at most {MAX_LINES})"
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"sweeps", "compute", "run"} <= names, f"{fig_id} lacks sweeps/compute/run"


@pytest.mark.parametrize("fig_id,module_name", MODULES)
def test_figure_module_trains_only_through_sweeps(fig_id, module_name):
    _, tree = _tree(module_name)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(LIBRARY_INTERNALS), \
                f"{fig_id} imports {node.module}"
            if node.module == "dlnfusion":
                imported = {a.name for a in node.names}
                assert not imported & RUNNERS, f"{fig_id} imports {imported & RUNNERS}"
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith(LIBRARY_INTERNALS) for a in node.names), fig_id
