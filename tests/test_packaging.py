"""The wheel: only the dlnfusion namespace, and the figures reproduce from an installed copy."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the sources: a build writes build/ and *.egg-info next to them.
    src = out / "src"
    files = [p for d in ("dlnfusion", "simulations") for p in (ROOT / d).rglob("*.py")]
    for f in files + [ROOT / "pyproject.toml", ROOT / "README.md"]:
        dst = src / f.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(f.read_bytes())
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "-w", str(out), str(src)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return next(out.glob("dlnfusion-*.whl"))


def test_wheel_holds_only_the_dlnfusion_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"dlnfusion"}
    # Every package of the source tree is in the wheel, the figure modules under dlnfusion.
    packages = {str(p.parent.relative_to(ROOT)).replace("/", ".")
                for p in (ROOT / "dlnfusion").rglob("__init__.py")}
    for pkg in packages | {"dlnfusion.simulations"}:
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, pkg
    assert "dlnfusion/simulations/zhang2024_fig3c.py" in names


def test_installed_wheel_reproduces_a_figure_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # The installed copy comes first on the path; the run happens outside the repository.
    env = dict(os.environ, PYTHONPATH=str(target))
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    where = subprocess.run([sys.executable, "-c", "import dlnfusion; print(dlnfusion.__file__)"],
                           cwd=run_dir, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target))
    script = target / "bin" / "dlnfusion"
    r = subprocess.run([str(script), "reproduce", "zhang2024-fig3c", "--quick", "--out", "res"],
                       cwd=run_dir, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    data = json.loads((run_dir / "res" / "zhang2024-fig3c.json").read_text())
    assert len(data["points"]) == 36
    assert (run_dir / "res" / "zhang2024-fig3c.png").stat().st_size > 10_000
