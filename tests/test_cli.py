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


class _Figure:
    """A figure module whose run writes nothing and ends as ``outcome`` says."""
    TITLE = "test figure"

    def __init__(self, outcome):
        self.outcome = outcome

    def run(self, out, quick=False):
        if self.outcome is not None:
            raise self.outcome
        return {"json": str(out / "done.json"), "figures": []}


def test_interrupted_reproduce_says_what_is_kept(monkeypatch, capsys, tmp_path):
    """Ctrl-C during a figure ends the command with status 130 and one paragraph (no
    traceback): a sweep's saved chunks and how to resume, the figures already written."""
    from dlnfusion.sweep import SweepInterrupted

    stop = SweepInterrupted("sweep interrupted", 3, 8, tmp_path / "sweep")
    figures = {"first": _Figure(None), "second": _Figure(stop)}
    monkeypatch.setattr(cli, "FIGURES", dict.fromkeys(figures, "unused"))
    monkeypatch.setattr(cli, "_load", figures.__getitem__)
    assert cli.main(["reproduce", "all", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "interrupted while reproducing second: 3 of 8 chunks of its sweep are saved in " \
           f"{tmp_path / 'sweep'}; re-run the same command to resume" in err
    assert f"finished before it are written in {tmp_path}: first." in err
    figures["second"] = _Figure(KeyboardInterrupt())
    assert cli.main(["reproduce", "second", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "second: its partial results are not kept; re-run `dlnfusion reproduce second " \
           f"--out {tmp_path}` to make it." in err and "finished before" not in err


def test_figure_list_comes_from_the_modules():
    """Every public module of the simulations package is a figure whose ID is its name with
    dashes, listed in natural order (fig2 before fig11), with a title and a run function."""
    import importlib
    import pkgutil

    from dlnfusion import simulations

    names = [m.name for m in pkgutil.iter_modules(simulations.__path__)
             if not m.name.startswith("_")]
    assert sorted(cli.FIGURES.values()) == sorted(f"dlnfusion.simulations.{n}" for n in names)
    for fig_id, mod in cli.FIGURES.items():
        module = importlib.import_module(mod)
        assert module.ID == fig_id and module.TITLE and callable(module.run)
    ids = list(cli.FIGURES)
    assert ids.index("zhang2024-fig2") < ids.index("zhang2024-fig11")


def test_reproduce_all_prints_a_timing_table(monkeypatch, capsys, tmp_path):
    figures = {"first": _Figure(None), "second": _Figure(None)}
    monkeypatch.setattr(cli, "FIGURES", dict.fromkeys(figures, "unused"))
    monkeypatch.setattr(cli, "_load", figures.__getitem__)
    assert cli.main(["reproduce", "all", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()[-4:]
    assert table[0].split() == ["figure", "seconds"]
    assert {table[1].split()[0], table[2].split()[0]} == {"first", "second"}
    assert table[3].split()[0] == "total"
    assert float(table[3].split()[1]) == pytest.approx(
        float(table[1].split()[1]) + float(table[2].split()[1]), abs=0.15)
