"""The package's front and its import graph: what a user sees, and layers that only point down."""
import ast
import pathlib

import pytest

import dlnfusion

PACKAGE = pathlib.Path(dlnfusion.__file__).parent

# Each unit of the package (a top-level module or subpackage) and its layer: a unit may import
# only from units of strictly lower layers. Units of one layer never import each other
# (training and theory in particular: the closed forms never run a network, and the network
# runners never consult the theory).
LAYERS = {
    "precision": 0, "results": 0, "losses": 0, "checks": 0,
    "stats": 1, "networks": 1,
    "data": 2, "interventions": 2, "rules": 2,
    "transforms": 3,
    "training": 4, "theory": 4,
    "reduced": 5,
    "compare": 6,
    "sweep": 7, "plot": 7,
    "cli": 8, "__init__": 8,
}


def _unit(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imported_units(path: pathlib.Path) -> set:
    """Units of dlnfusion that a file imports (relative or absolute, at any depth)."""
    pkg = list(path.relative_to(PACKAGE).parent.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = pkg[:len(pkg) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                out.add(target[0])
            else:                                    # from . import x / from .. import x
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlnfusion."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names
                       if a.name.startswith("dlnfusion."))
    return out


def _graph() -> dict:
    graph = {}
    for f in PACKAGE.rglob("*.py"):
        u = _unit(f)
        graph.setdefault(u, set()).update(_imported_units(f) - {u})
    return graph


def test_every_unit_has_a_layer():
    assert set(_graph()) <= set(LAYERS), set(_graph()) - set(LAYERS)


def test_imports_only_point_down():
    bad = [(u, v) for u, targets in _graph().items() for v in targets
           if v in LAYERS and LAYERS[v] >= LAYERS[u]]
    assert not bad, f"imports that do not point to a lower layer: {sorted(bad)}"


def test_runners_never_consult_the_theory_and_the_theory_never_runs():
    g = _graph()
    for low in ("transforms", "training", "rules"):
        assert "theory" not in g.get(low, set()), f"{low} imports theory"
    assert not {"training", "reduced"} & g["theory"]


def test_front_lists_exactly_what_it_shows():
    assert dir(dlnfusion) == sorted(dlnfusion.__all__)
    assert len(set(dlnfusion.__all__)) == len(dlnfusion.__all__)
    for name in dlnfusion.__all__:
        assert getattr(dlnfusion, name) is not None
    for runner in ("train", "simulate", "fit", "train_completion", "train_reconstruction"):
        assert callable(getattr(dlnfusion, runner))
    for sub in dlnfusion.SUBMODULES:
        assert getattr(dlnfusion, sub).__name__ == f"dlnfusion.{sub}"
    with pytest.raises(AttributeError, match="__all__"):
        dlnfusion.no_such_name


def test_every_runner_result_is_a_run():
    for cls in (dlnfusion.Trajectory, dlnfusion.History, dlnfusion.CompletionRuns,
                dlnfusion.ReconstructionRun):
        assert issubclass(cls, dlnfusion.Run)
