"""``python -m sims.circuits``: simulate Appendix 1's circuits, verify them against eq. (6) and rule (3)."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys

from sims.circuits.output import MIN_ROUNDS, OVERLAPS, OutputCircuit
from sims.circuits.report import (
    OUTPUT_FIELDS,
    SHUTDOWN_FIELDS,
    output_text,
    shutdown_text,
    tally_json,
)
from sims.circuits.verify import peak_bytes, verify_output, verify_shutdown
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    available_memory,
    command_line,
    path_arg,
    require_writable,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line (every flag documented in --help)."""
    p = OneLineParser(
        prog="python -m sims.circuits",
        description="Simulate Appendix 1's local circuits (output error signal; feedback shutdown) and "
                    "report where they agree with eq. (6) and rule (3), listing every disagreeing case.")
    p.add_argument("--S", type=float, nargs="+", default=[0.5, 1.0, 2.0], metavar="S",
                   help="learning thresholds S of the grid (eq. (6) has S=1; default: 0.5 1 2)")
    p.add_argument("--mu", type=float, nargs="+", default=[0.1, 0.5, 1.0], metavar="MU",
                   help="wrong-class weights mu of the grid (the paper assumes mu <= 1; default: 0.1 0.5 1)")
    p.add_argument("--M", type=float, nargs="+", default=[4.0, 8.0, 16.0], metavar="M",
                   help="bounds M on |h_c| of the grid (default: 4 8 16)")
    p.add_argument("--eps", type=float, default=0.1, help="sigma_delta's small constant eps (default: 0.1)")
    p.add_argument("--K", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0], metavar="K",
                   help="bounds K on |delta| for the shutdown circuit (default: 0.5 1 2 4)")
    p.add_argument("--overlap", choices=[*OVERLAPS, "all"], default="all",
                   help="value of sigma_delta at x=+-M, where the printed intervals overlap: 'outer' (1 and "
                        "-mu), 'inner' (0), 'listed' (first printed case: 1 at M, 0 at -M), or 'all' "
                        "(default) to report each")
    p.add_argument("--samples", type=int, default=2000,
                   help="random inputs per grid point and per value of s_c (thresholds are always added; "
                        "default: 2000)")
    p.add_argument("--rounds", type=int, default=8,
                   help=f"update cycles simulated per trajectory (>= {MIN_ROUNDS}; default: 8)")
    p.add_argument("--sigma-t-upper", type=float, default=1.0,
                   help="sigma_t's upper threshold (printed: 1); change it to plant a fault")
    p.add_argument("--sigma-t-lower", type=float, default=None,
                   help="sigma_t's lower threshold (printed: -mu, the default); change it to plant a fault")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    p.add_argument("--json", type=path_arg, default=None, metavar="FILE",
                   help="also write the full report (every disagreeing case) as JSON to FILE")
    p.add_argument("--plot", type=path_arg, default=None, metavar="DIR",
                   help="draw Figure 13 and the update cycles of the four cases into DIR (png and pdf)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


#: Largest magnitude of a circuit parameter (--S, --mu, --M, --K, --eps, --sigma-t-*): beyond
#: it the circuits' products overflow (1e308 ended in a traceback).
VALUE_MAX = 1e6


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad values in one line; a grid value given twice is counted once (as --seeds
    elsewhere), so that it does not double the tallies."""
    for name in ("S", "mu", "M", "K"):
        setattr(args, name, list(dict.fromkeys(getattr(args, name))))
        bad = [v for v in getattr(args, name) if not 0 < v <= VALUE_MAX]
        if bad:
            p.error(f"--{name} values must be in (0, {VALUE_MAX:g}], got {bad[0]:g}")
    if not 0 < args.eps <= VALUE_MAX:
        p.error(f"--eps must be in (0, {VALUE_MAX:g}], got {args.eps:g}")
    for flag, v in (("--sigma-t-upper", args.sigma_t_upper), ("--sigma-t-lower", args.sigma_t_lower)):
        if v is not None and not (math.isfinite(v) and abs(v) <= VALUE_MAX):
            p.error(f"{flag} must be in [-{VALUE_MAX:g}, {VALUE_MAX:g}], got {v:g}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    if args.json is not None and args.plot is not None and (
            args.json.resolve() == args.plot.resolve()):
        p.error(f"--json and --plot are both {args.json}: give each output its own path")
    if args.json is not None:
        require_writable(p, "--json", args.json, file=True)
    if args.plot is not None:
        require_writable(p, "--plot", args.plot)
    if args.samples < 0:
        p.error(f"--samples must be >= 0, got {args.samples}")
    if args.rounds < MIN_ROUNDS:
        p.error(f"--rounds must be >= {MIN_ROUNDS}, got {args.rounds}")
    _check_memory(p, args.samples, args.rounds)


def _check_memory(p: argparse.ArgumentParser, samples: int, rounds: int) -> None:
    """Refuse, before any work, a --rounds or --samples whose simulation cannot fit in memory."""
    free = available_memory()
    if free is None:
        return
    if peak_bytes(0, rounds) > free:
        p.error(f"--rounds {rounds} needs about {_gib(peak_bytes(0, rounds))} of memory even with "
                f"--samples 0, more than the {_gib(free)} available")
    if peak_bytes(samples, rounds) > free:
        fit = samples * free // peak_bytes(samples, rounds)
        p.error(f"--samples {samples} (at --rounds {rounds}) needs about "
                f"{_gib(peak_bytes(samples, rounds))} of memory, more than the {_gib(free)} "
                f"available; about {fit} samples fit")


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


@command_line("python -m sims.circuits")
def main(argv: list[str] | None = None) -> int:
    """Run the verifier, print its report, optionally write JSON and figures."""
    p = build_parser()
    args = p.parse_args(argv)
    _check(p, args)
    overlaps = list(OVERLAPS) if args.overlap == "all" else [args.overlap]
    grid = list(itertools.product(args.S, args.mu, args.M))
    out = verify_output(grid, eps=args.eps, overlaps=overlaps, n_random=args.samples, seed=args.seed,
                        t_upper=args.sigma_t_upper, t_lower=args.sigma_t_lower, n_rounds=args.rounds,
                        progress=not args.quiet)
    shut = verify_shutdown(args.K, n_random=args.samples, seed=args.seed, progress=not args.quiet)
    lower = "-mu" if args.sigma_t_lower is None else f"{args.sigma_t_lower:g}"
    header = (f"Appendix 1, output circuit vs eq. (6): S in {args.S}, mu in {args.mu}, M in {args.M}, "
              f"eps={args.eps:g}, sigma_t thresholds {args.sigma_t_upper:g} and {lower}, {args.samples} random "
              f"h_c per grid point and s_c, plus the thresholds; seed {args.seed}\n"
              "  signal read 'ignoring the oscillation': delta_c at a fixed point, 0 while it cycles; t_c starts "
              "at 0; inputs are float32 numbers (exact sums)")
    print(output_text(out, header))
    print()
    print(shutdown_text(shut, f"Appendix 1, shutdown circuit vs rule (3): K in {args.K}, delta in [-K, K], "
                              f"h in [-3, 3], plus +-1, +-K and neighbours; seed {args.seed}"))
    if args.json is not None:
        doc = {"argv": sys.argv[1:] if argv is None else argv,
               "output_circuit": {o: tally_json(t, OUTPUT_FIELDS) for o, t in out.items()},
               "shutdown_circuit": tally_json(shut, SHUTDOWN_FIELDS)}
        atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    if args.plot is not None:
        from figures.circuits import cycles_figure, figure13

        circuit = OutputCircuit(S=1.0, mu=0.5, M=2.0, eps=0.25, overlap=overlaps[0])
        for path in figure13(circuit, args.plot) + cycles_figure(circuit, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
