"""Run every sympy derivation in theory/ (each raises AssertionError when a step fails)."""
import importlib.util
from pathlib import Path

import pytest

THEORY = Path(__file__).resolve().parents[1] / "theory"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"theory_{name}", THEORY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cases():
    for path in sorted(THEORY.glob("*.py")):
        mod = _load(path.stem)
        for attr in sorted(dir(mod)):
            if attr.startswith("derive_") and attr != "derive_all":
                yield pytest.param(path.stem, attr, id=f"{path.stem}.{attr}")


@pytest.mark.parametrize("module, function", list(_cases()))
def test_derivation(module, function):
    assert getattr(_load(module), function)() is True


def test_every_module_has_derivations():
    for path in THEORY.glob("*.py"):
        assert any(a.startswith("derive_") for a in dir(_load(path.stem))), path.name
