"""One vocabulary: every public runner and predictor names a concept the same way.

The vocabulary is written once, in docs/api.md ("Vocabulary"); this test reads the signatures
of the public functions and fails on a synonym that the vocabulary replaced.
"""
import inspect
import pathlib
import re

import dlnfusion as dln

# synonym -> the vocabulary's word for it
SYNONYMS = {
    "max_steps": "steps", "end_step": "steps", "horizon": "steps", "n_steps": "steps",
    "stride": "record_every", "every": "record_every",
    "tau": "lr", "eta": "lr", "learning_rate": "lr",
    "u0": "scale", "init_std": "scale", "std": "scale",
    "w0": "init", "a0": "init", "p0": "init", "gram0": "init", "state0": "init",
    "seed_list": "seeds",
}
INTEGRATORS = ("gd", "gf")


def _public_functions():
    mods = {"dlnfusion": dln, "theory": dln.theory, "reduced": dln.reduced,
            "compare": dln.compare}
    out = {}
    for label, mod in mods.items():
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out[f"{label}.{name}"] = obj
    return out


def test_no_synonyms_in_public_signatures():
    bad = []
    for qual, fn in _public_functions().items():
        for p in inspect.signature(fn).parameters:
            if p in SYNONYMS:
                bad.append(f"{qual}({p}=...) should say {SYNONYMS[p]}")
    assert not bad, "\n".join(bad)


def test_method_means_the_integrator():
    for qual, fn in _public_functions().items():
        p = inspect.signature(fn).parameters.get("method")
        if p is not None and p.default is not inspect.Parameter.empty:
            assert p.default in INTEGRATORS, f"{qual}: method={p.default!r}"


def test_vocabulary_table_in_the_docs_names_every_word():
    text = (pathlib.Path(__file__).parents[1] / "docs" / "api.md").read_text()
    section = text[text.index("## Vocabulary"):]
    section = section[:section.index("\n## ", 4)]
    words = set(re.findall(r"^\| `([a-z_]+)`", section, flags=re.M))
    assert set(SYNONYMS.values()) | {"method", "seed", "stop_loss", "diverge_loss",
                                     "interventions", "optimizer", "balancing",
                                     "level", "scheme", "epochs"} <= words


def test_entry_point_table_matches_the_signatures():
    """docs/api.md's table of entry points is the one the signatures generate (regenerate it
    with `python tests/helpers/entry_points.py`)."""
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parent / "helpers"))
    import entry_points
    assert entry_points.current() == entry_points.section()
