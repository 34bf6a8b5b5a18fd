"""docs/api.md, the API tour, names every public name of the toolkit's fronts."""
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"
FRONTS = ["dlnfusion", "dlnfusion.theory", "dlnfusion.compare", "dlnfusion.sweep",
          "dlnfusion.interventions", "dlnfusion.data"]


def _code_identifiers(text: str) -> set:
    """Every identifier written as code in a markdown text: in fenced blocks and in inline
    code spans (prose words such as "data" do not count)."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)   # without the language tag
    inline = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(fenced + inline)))


_NO_DEFAULT = object()


def _parameters(fn) -> list:
    """[(name, default)] of a function, as inspect reads them."""
    return [(p.name, _NO_DEFAULT if p.default is p.empty else p.default)
            for p in inspect.signature(fn).parameters.values()]


def _documented_signatures(text: str, name: str) -> list:
    """[(name, default)] of every signature of ``name`` written in an inline code span,
    e.g. `deficit_times(stats, *, depth, post_norm0=1.0)` (defaults read as Python literals)."""
    out = []
    for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        m = re.fullmatch(rf"(?:[\w.]+\.)?{name}\((.*)\)", span.strip(), flags=re.S)
        if not m:
            continue
        args = ast.parse(f"def f({m.group(1)}): pass").body[0].args
        pos = [(a.arg, _NO_DEFAULT) for a in args.args]
        for k, d in enumerate(reversed(args.defaults), 1):
            pos[-k] = (pos[-k][0], ast.literal_eval(d))
        kw = [(a.arg, _NO_DEFAULT if d is None else ast.literal_eval(d))
              for a, d in zip(args.kwonlyargs, args.kw_defaults)]
        out.append(pos + kw)
    return out


def test_readers_of_the_markdown():
    text = "Prose about data.\n\n```python\nx = alpha(1)\n```\nthe `beta(gamma=2)` call"
    assert _code_identifiers(text) == {"x", "alpha", "beta", "gamma"}
    text = "`th.f(a, b=1e-9, *, c, d=\"gd\")` and `f(a)` and `g(a)`"
    assert _documented_signatures(text, "f") == [
        [("a", _NO_DEFAULT), ("b", 1e-9), ("c", _NO_DEFAULT), ("d", "gd")],
        [("a", _NO_DEFAULT)]]


@pytest.mark.parametrize("module", FRONTS)
def test_every_public_name_is_in_the_api_tour(module):
    names = importlib.import_module(module).__all__
    missing = sorted(set(names) - _code_identifiers(API.read_text()))
    assert not missing, f"{module}: not in docs/api.md: {missing}"


@pytest.mark.parametrize("name", ["deficit_times", "initial_post_norm", "inforeg_slowdown",
                                  "learning_sequence", "sequence.stage_one_integral"])
def test_theory_signatures_are_written_out(name):
    """The tour gives these functions' full signatures (parameter names, in order, and
    defaults, as inspect reads them), so that a reader can call them from the tour alone."""
    from dlnfusion import theory

    obj = theory
    for part in name.split("."):                   # building blocks: theory.<module>.<name>
        obj = getattr(obj, part)
    documented = _documented_signatures(API.read_text(), name.split(".")[-1])
    assert _parameters(obj) in documented, documented


def test_deficit_functions_document_what_they_return():
    """The tour's entries of deficit_times and initial_post_norm say what comes back, in
    which units, and under which assumptions."""
    rows = {name: next(line for line in API.read_text().splitlines()
                       if line.startswith(f"| `{name}("))
            for name in ("deficit_times", "initial_post_norm")}
    for word in ("DeficitTimes", "t_A", "t_B", "delay", "regime", "valid", "steps",
                 "small init", "scalar modalities", "initial_post_norm"):
        assert word in rows["deficit_times"], word
    for word in ("(*batch,)", "W^L ⋯ W^{L_f+1}", "post_norm0", "1 for late fusion",
                 "dimensionless"):
        assert word in rows["initial_post_norm"], word


def test_inforeg_slowdown_documents_every_argument():
    """Every argument of theory.inforeg_slowdown has its symbol, meaning and units in the
    docstring, with the paper and equation its α comes from."""
    from dlnfusion import theory

    fn = theory.inforeg_slowdown
    doc = inspect.getdoc(fn)
    for name, symbol in (("s", "s"), ("lr", "η"), ("alpha", "α"), ("epoch", "E")):
        assert re.search(rf"^\* {symbol}: ``{name}``", doc, flags=re.M), name
    for needed in ("CVPR 2025", "eq. 16", "Units of Σ_yx", "Same units as ``s``",
                   "Times are in steps", "dimensionless"):
        assert needed in doc, needed
    assert list(inspect.signature(fn).parameters) == ["s", "lr", "alpha", "epoch"]
