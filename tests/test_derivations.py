"""Run every sympy derivation in theory/ and every check of a derivation against dlnfusion.

Each derive_* function proves algebra with sympy; each check_* function evaluates the derived
expressions at sample points and compares them with the dlnfusion function that implements
them (both raise AssertionError on failure). The table of theory/README.md lists, per file,
the library functions its derivations justify; test_every_library_function_is_checked asserts
that the checks of that file call each of them.
"""
import functools
import importlib.util
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

import dlnfusion

THEORY = Path(__file__).resolve().parents[1] / "theory"
# The scripts import their shared helpers (theory/_checks.py) by name, as when run directly.
if str(THEORY) not in sys.path:
    sys.path.insert(0, str(THEORY))


def _scripts():
    """The derivation scripts (helper modules start with an underscore)."""
    return [p for p in sorted(THEORY.glob("*.py")) if not p.name.startswith("_")]


@functools.lru_cache(maxsize=None)
def _load(name):
    spec = importlib.util.spec_from_file_location(f"theory_{name}", THEORY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _functions(prefix):
    for path in _scripts():
        mod = _load(path.stem)
        for attr in sorted(dir(mod)):
            if attr.startswith(prefix) and not attr.endswith("_all"):
                yield path.stem, attr


def _table():
    """{file stem: [library names]} from the "used by" column of theory/README.md."""
    rows = {}
    for line in (THEORY / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`(\w+)\.py`\s*\|.*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = re.findall(r"`([\w.]+)`", m.group(2))
    return rows


def _resolve(name):
    """(owner, attribute) of a table entry: `dlnfusion.X.y` or `theory.x`."""
    parts = name.split(".")
    if parts[0] == "theory":
        parts = ["dlnfusion"] + parts
    if parts[0] != "dlnfusion":
        raise ValueError(f"table entry {name!r} must start with dlnfusion. or theory.")
    owner = dlnfusion
    for p in parts[1:-1]:
        owner = getattr(owner, p)
    if not callable(getattr(owner, parts[-1], None)):
        raise ValueError(f"table entry {name!r} is not a dlnfusion function")
    return owner, parts[-1]


@contextmanager
def _recording(names):
    """Replace every named library function by a wrapper that records that it was called."""
    called, saved = set(), []
    try:
        for name in names:
            owner, attr = _resolve(name)
            original = getattr(owner, attr)

            def wrapper(*args, _original=original, _name=name, **kwargs):
                called.add(_name)
                return _original(*args, **kwargs)

            functools.update_wrapper(wrapper, original)
            setattr(owner, attr, wrapper)
            saved.append((owner, attr, original))
        yield called
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


@functools.lru_cache(maxsize=None)
def _run_check(module, function):
    """Run one check once per session; return the table's library functions it called."""
    names = sorted({n for row in _table().values() for n in row})
    with _recording(names) as called:
        assert getattr(_load(module), function)() is True
    return frozenset(called)


@pytest.mark.parametrize("module, function",
                         [pytest.param(m, f, id=f"{m}.{f}") for m, f in _functions("derive_")])
def test_derivation(module, function):
    assert getattr(_load(module), function)() is True


@pytest.mark.parametrize("module, function",
                         [pytest.param(m, f, id=f"{m}.{f}") for m, f in _functions("check_")])
def test_check_against_library(module, function):
    _run_check(module, function)


def test_every_module_has_derivations():
    for path in _scripts():
        assert any(a.startswith("derive_") for a in dir(_load(path.stem))), path.name


def test_every_derivation_is_checked_or_says_why_not():
    """derive_X has a check_X, or its docstring says which check covers it or that it has no
    dlnfusion counterpart."""
    for module, function in _functions("derive_"):
        mod = _load(module)
        if hasattr(mod, "check_" + function[len("derive_"):]):
            continue
        doc = getattr(mod, function).__doc__ or ""
        assert "counterpart" in doc, f"{module}.{function}: no check_ and no reason given"
        for name in re.findall(r"\b(check_\w+)", doc):
            assert hasattr(mod, name), f"{module}.{function} names a missing {name}"


def test_every_library_function_is_checked():
    """Each library function in the "used by" column is called by a check of its file."""
    table = _table()
    assert set(table) == {p.stem for p in _scripts()}, set(table)
    for module, names in table.items():
        assert names, f"theory/README.md lists no library function for {module}.py"
        called = set()
        for m, f in _functions("check_"):
            if m == module:
                called |= _run_check(m, f)
        missing = set(names) - called
        assert not missing, f"{module}.py: no check calls {sorted(missing)}"
