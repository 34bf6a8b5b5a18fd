"""The ``dlnfusion`` command.

    dlnfusion list                               figures that can be reproduced
    dlnfusion reproduce ID --out DIR [--quick]   run one figure, write DIR/ID.json, .png, .pdf
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

#: Figure id -> module (in the simulations package) that reproduces it.
FIGURES = {
    "zhang2024-fig3c": "simulations.zhang2024_fig3c",
    "zhang2024-fig6": "simulations.zhang2024_fig6",
}


def _load(fig_id: str):
    try:
        return importlib.import_module(FIGURES[fig_id])
    except KeyError:
        raise SystemExit(f"unknown figure {fig_id!r}; choose one of: {', '.join(FIGURES)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dlnfusion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the figures that can be reproduced")
    rep = sub.add_parser("reproduce", help="reproduce a paper figure")
    rep.add_argument("figure", help="figure id (see `dlnfusion list`)")
    rep.add_argument("--out", required=True, type=Path, help="output directory")
    rep.add_argument("--quick", action="store_true", help="fewer seeds, same grid")
    args = parser.parse_args(argv)

    if args.command == "list":
        for fig_id, mod in FIGURES.items():
            print(f"{fig_id:20s} {_load(fig_id).TITLE}")
        return 0
    module = _load(args.figure)
    start = time.perf_counter()
    result = module.run(args.out, quick=args.quick)
    elapsed = time.perf_counter() - start
    print(f"wrote {result['json']}")
    for f in result["figures"]:
        print(f"wrote {f}")
    print(f"{args.figure} finished in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
