"""Text and JSON renderings of the verifier's tallies (``sims.circuits.verify``)."""

from __future__ import annotations

from sims.circuits.verify import Tally

OUTPUT_FIELDS = ("s", "where", "cycle", "signal", "eq6", "spec", "summary", "printed", "fails")
SHUTDOWN_FIELDS = ("where_h", "where_delta", "delta_tilde", "remark2", "rule3", "fails")

OUTPUT_CHECKS = {"eq6": "signal = eq. (6) with threshold S",
                 "printed": "cycle as printed in Appendix 1",
                 "spec": "signal = Appendix 1's specification (h_c<S; h_c>-1)",
                 "summary": "signal = Appendix 1's summary (sign(delta_c) h_c < S)"}
SHUTDOWN_CHECKS = {"rule3": "delta~ = rule (3) (0 if |h| >= 1)",
                   "remark2": "delta~ = delta sigma'(h), sigma'=1 iff |h| <= 1 (Remark 2)",
                   "zero_iff_saturated": "delta~ = 0 exactly for saturated units (or delta = 0)"}


def tally_rows(tally: Tally, fields: tuple[str, ...]) -> list[dict]:
    """The disagreeing cases of a tally, one dict per group (JSON-able)."""
    rows = []
    for key, g in tally.groups.items():
        row = dict(zip(fields, key))
        row["fails"] = list(row["fails"])
        row.update(count=g["count"], grid=[list(p) for p in g["grid"]], examples=g["examples"])
        rows.append(row)
    return rows


def tally_json(tally: Tally, fields: tuple[str, ...]) -> dict:
    """A tally as a JSON-able dict: counts, agreements, disagreeing groups."""
    return {"n": tally.n, "agree": dict(tally.agree), "disagreements": tally_rows(tally, fields)}


def _agreement_lines(tally: Tally, checks: dict[str, str]) -> list[str]:
    return [f"    {desc:<62} {tally.agree[k]:>7}/{tally.n}  ({tally.n - tally.agree[k]} disagree)"
            for k, desc in checks.items()]


def output_text(tallies: dict[str, Tally], header: str) -> str:
    """Report of the output circuit, one block per reading of sigma_delta's overlap at +-M."""
    lines = [header]
    for overlap, tally in tallies.items():
        lines.append(f"  sigma_delta at x = +-M read as {overlap!r}: {tally.n} cases")
        lines += _agreement_lines(tally, OUTPUT_CHECKS)
        for r in tally_rows(tally, OUTPUT_FIELDS):
            lines.append(f"    - s_c={r['s']:+d}, {r['where']}: {r['cycle']}")
            lines.append(f"        read {r['signal']}, eq.(6) {r['eq6']}, spec {r['spec']}, summary "
                         f"{r['summary']}; printed: "
                         f"{r['printed']}; fails {', '.join(r['fails'])}; {r['count']} case(s), "
                         f"e.g. h={r['examples'][0]:.9g}; at {_grid(r['grid'], ('S', 'mu', 'M'))}")
    return "\n".join(lines)


def shutdown_text(tally: Tally, header: str) -> str:
    """Report of the shutdown circuit."""
    lines = [header, f"  {tally.n} cases"]
    lines += _agreement_lines(tally, SHUTDOWN_CHECKS)
    for r in tally_rows(tally, SHUTDOWN_FIELDS):
        lines.append(f"    - {r['where_h']}, {r['where_delta']}: delta~ = {r['delta_tilde']}, Remark 2 gives "
                     f"{r['remark2']}, rule (3) gives {r['rule3']}; fails {', '.join(r['fails'])}; "
                     f"{r['count']} case(s), e.g. h={r['examples'][0]:.9g}; at {_grid(r['grid'], ('K',))}")
    return "\n".join(lines)


def _grid(points: list[list[float]], names: tuple[str, ...]) -> str:
    """The grid points of a group, as a product "S in {..}, mu in {..}" when they form one."""
    axes = [sorted({p[i] for p in points}) for i in range(len(names))]
    size = 1
    for a in axes:
        size *= len(a)
    if size == len({tuple(p) for p in points}):
        return ", ".join(f"{n} in {{{', '.join(f'{v:.6g}' for v in a)}}}" for n, a in zip(names, axes))
    return "; ".join(", ".join(f"{n}={v:.6g}" for n, v in zip(names, p)) for p in points)
