"""``python -m theory``: the table of Appendix 2's steps; ``--numeric``: Theorems 1-2 numerically.

Examples::

    python -m theory                                   # table of every check (text)
    python -m theory --format json --out theory.json   # also markdown, latex
    python -m theory --only dF3/deps T2.closed-form    # a few checks
    python -m theory --numeric                         # numerical tests of Theorems 1 and 2
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from theory import report
from theory.checks import all_checks
from theory.evaluate import run_check
from theory.numeric import run_numeric, summary_text
from urfb_common import OneLineParser, atomic_write_text, command_line, path_arg, require_writable

_SUFFIX = {".md": "markdown", ".json": "json", ".tex": "latex", ".txt": "text"}

#: Most --n-outside parameter sets (default 40).
N_OUTSIDE_MAX = 10_000


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m theory``."""
    ap = OneLineParser(
        prog="python -m theory",
        description="Machine-checked Appendix 2 of Amit, 'Deep learning with asymmetric "
                    "connections and Hebbian updates': every displayed step re-derived with "
                    "sympy (status holds / erratum / undecided), rows for the engine's other "
                    "feedback rules (ids rules.*, docs/theory.md), and numerical tests of "
                    "Theorems 1 and 2.")
    ap.add_argument("--format", choices=report.FORMATS,
                    help="output format for --out (default: from the file suffix .md/.json/"
                         ".tex/.txt, which a --format given must agree with) or, without --out, "
                         "for stdout (default text)")
    ap.add_argument("--out", type=path_arg, help="write the table (or, with --numeric, the "
                                             "summary) to this file, atomically")
    ap.add_argument("--only", nargs="+", metavar="ID",
                    help="run only these check ids (see the table for the ids)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random sample points and parameter sets (default 0)")
    ap.add_argument("--numeric", action="store_true",
                    help="run the numerical checks of Theorems 1 and 2 instead of the table")
    ap.add_argument("--n-outside", type=int, default=40,
                    help="with --numeric: parameter sets drawn outside Theorem 2's assumptions "
                         "(half as many for Theorem 1; default 40)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _out_format(ap: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """--format, or the one --out's suffix names; a --format that contradicts the suffix (LaTeX
    in a .md file) is refused."""
    if args.out is None:
        return args.format or "text"
    implied = _SUFFIX.get(args.out.suffix.lower())
    if args.format and implied and args.format != implied:
        ap.error(f"--format {args.format} contradicts --out {args.out}, whose suffix means "
                 f"{implied}; give --format {implied} or another suffix")
    fmt = args.format or implied
    if fmt is None:
        ap.error(f"--out {args.out}: cannot tell the format from the suffix; give --format")
    return fmt


@command_line("python -m theory")
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.seed < 0:
        ap.error(f"--seed must be >= 0, got {args.seed}")
    if not 2 <= args.n_outside <= N_OUTSIDE_MAX:  # checked with or without --numeric
        ap.error(f"--n-outside must be in 2..{N_OUTSIDE_MAX}, got {args.n_outside}")
    if args.out is not None:  # first: a folder is named as such, not as a missing suffix
        require_writable(ap, "--out", args.out, file=True)
    fmt = _out_format(ap, args)
    if args.numeric:
        return _numeric(ap, args, fmt)
    checks = all_checks()
    if args.only:
        if not all(i.strip() for i in args.only):
            ap.error("--only: an id is empty; give check ids from the table, e.g. eq11")
        known = {c.id for c in checks}
        unknown = [i for i in args.only if i not in known]
        if unknown:
            ap.error(f"--only: unknown check id(s) {', '.join(unknown)}")
        checks = [c for c in checks if c.id in set(args.only)]
    results = [run_check(c, args.seed)
               for c in tqdm(checks, desc="checks", unit="check", disable=args.quiet)]
    if args.out is None:
        print(report.render(results, fmt), end="" if fmt != "text" else "\n")
        return 0
    print(report.text(results))
    atomic_write_text(args.out, report.render(results, fmt))
    print(f"wrote {args.out} ({fmt})")
    return 0


def _numeric(ap: argparse.ArgumentParser, args: argparse.Namespace, fmt: str) -> int:
    if args.only:
        ap.error("--only selects table checks; it cannot be combined with --numeric")
    if fmt == "latex":
        ap.error("--numeric writes text, markdown or json, not latex")
    findings = run_numeric(seed=args.seed, n_outside=args.n_outside, quiet=args.quiet)
    summary = summary_text(findings)
    body = {"json": json.dumps([f.as_dict() for f in findings], indent=2) + "\n",
            "markdown": f"```\n{summary}\n```\n", "text": summary + "\n"}[fmt]
    if args.out is None:  # --format applies to stdout, as for the table
        print(body, end="")
        return 0
    print(summary)
    atomic_write_text(args.out, body)
    print(f"wrote {args.out} ({fmt})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
