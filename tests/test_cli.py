"""The installed ``dlnfusion`` command (the console script next to this Python). Reproducing a
figure with it is tested in tests/test_fig3c_acceptance.py, from the installed wheel."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dlnfusion import cli


def _command():
    exe = Path(sys.executable).with_name("dlnfusion")
    path = exe if exe.exists() else shutil.which("dlnfusion")
    assert path, "the dlnfusion console script is not installed"
    return str(path)


def test_installed_command_lists_every_figure():
    r = subprocess.run([_command(), "list"], capture_output=True, text=True, check=True,
                       timeout=120)
    ids = [line.split()[0] for line in r.stdout.splitlines()]
    assert ids == list(cli.FIGURES)


def test_installed_command_rejects_bad_arguments(tmp_path):
    r = subprocess.run([_command(), "reproduce", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "unknown figure 'nope'" in r.stderr
    r = subprocess.run([_command(), "reproduce", "zhang2024-fig3c"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--out" in r.stderr


def test_main_in_process(capsys):
    assert cli.main(["list"]) == 0
    assert "zhang2024-fig3c" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown figure"):
        cli.main(["reproduce", "nope", "--out", "x"])
    with pytest.raises(SystemExit, match="2"):
        cli.main(["reproduce", "zhang2024-fig3c"])  # --out is required: argparse exits with 2
