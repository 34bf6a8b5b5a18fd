"""The ``dlnfusion`` command.

    dlnfusion list                               figures that can be reproduced
    dlnfusion reproduce ID --out DIR [--quick]   run one figure, write DIR/ID.json, .png, .pdf
    dlnfusion reproduce all --out DIR [--quick]  every figure, one after the other
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
import time
from pathlib import Path

def _figures() -> dict:
    """Figure id -> module: every public module of the simulations package is one figure, its
    id the module's name with dashes (the module's ``ID``; tests/test_cli.py checks both)."""
    from . import simulations

    names = sorted((m.name for m in pkgutil.iter_modules(simulations.__path__)
                    if not m.name.startswith("_")),   # natural order: fig2 before fig11
                   key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
    return {n.replace("_", "-"): f"{simulations.__name__}.{n}" for n in names}


#: Figure id -> module (in the simulations package) that reproduces it.
FIGURES = _figures()


def _load(fig_id: str):
    try:
        return importlib.import_module(FIGURES[fig_id])
    except KeyError:
        raise SystemExit(f"unknown figure {fig_id!r}; choose one of: {', '.join(FIGURES)}")


def _interrupted(fig_id: str, err: KeyboardInterrupt, finished: list, out: Path) -> str:
    """What an interrupted ``reproduce`` tells the user: what is kept and how to go on."""
    from .sweep import SweepInterrupted

    if isinstance(err, SweepInterrupted):
        kept = (f"{err.saved} of {err.total} chunks of its sweep are saved in {err.folder}; "
                "re-run the same command to resume (the saved chunks are skipped)")
    else:
        kept = (f"its partial results are not kept; re-run `dlnfusion reproduce {fig_id} "
                f"--out {out}` to make it")
    done = (f" The figures finished before it are written in {out}: {', '.join(finished)}."
            if finished else "")
    return f"dlnfusion: interrupted while reproducing {fig_id}: {kept}.{done}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dlnfusion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the figures that can be reproduced")
    rep = sub.add_parser("reproduce", help="reproduce a paper figure")
    rep.add_argument("figure", help="figure id (see `dlnfusion list`), or all")
    rep.add_argument("--out", required=True, type=Path, help="output directory")
    rep.add_argument("--quick", action="store_true", help="fewer seeds, same grid")
    rep.add_argument("--mnist", type=Path, default=None, metavar="FOLDER",
                     help="folder with MNIST's four IDX files, for the figures on real images "
                          "(default: scikit-learn's 8x8 digits)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for fig_id, mod in FIGURES.items():
            print(f"{fig_id:20s} {_load(fig_id).TITLE}")
        return 0
    ids = list(FIGURES) if args.figure == "all" else [args.figure]
    if args.mnist is not None:
        takes = [i for i in ids if "mnist" in inspect.signature(_load(i).run).parameters]
        if not takes:
            raise SystemExit(f"--mnist: {args.figure} does not use image data; the figures on "
                             "real images are: " + ", ".join(
                                 i for i in FIGURES
                                 if "mnist" in inspect.signature(_load(i).run).parameters))
    timings = {}
    for fig_id in ids:
        module = _load(fig_id)
        print(f"== {fig_id}: {module.TITLE}")
        start = time.perf_counter()
        extra = {}
        if args.mnist is not None and "mnist" in inspect.signature(module.run).parameters:
            extra["mnist"] = args.mnist
        try:
            result = module.run(args.out, quick=args.quick, **extra)
        except ValueError as err:
            if not extra:
                raise
            raise SystemExit(f"--mnist: {err}")
        except KeyboardInterrupt as err:
            # Ctrl-C: one paragraph instead of a traceback through the training internals.
            print(_interrupted(fig_id, err, list(timings), args.out), file=sys.stderr)
            return 130
        timings[fig_id] = time.perf_counter() - start
        print(f"wrote {result['json']}")
        for f in result["figures"]:
            print(f"wrote {f}")
        print(f"{fig_id} finished in {timings[fig_id]:.1f} s")
    if len(ids) > 1:
        print(_timing_table(timings))
    return 0


def _timing_table(timings: dict) -> str:
    """Each figure's wall time, longest first, and the total."""
    width = max(map(len, timings), default=6)
    lines = [f"{'figure':{width}s}  seconds"]
    lines += [f"{k:{width}s}  {v:7.1f}" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])]
    lines.append(f"{'total':{width}s}  {sum(timings.values()):7.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
