"""Render check results (``theory.evaluate.Result``) as a text, Markdown, JSON or LaTeX table."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from theory.evaluate import Result

FORMATS = ("text", "markdown", "json", "latex")


def _note(r: Result) -> str:
    if r.status == "erratum":
        return r.correction
    if r.status == "undecided":
        return r.reason
    return ""


def counts(results: Sequence[Result]) -> str:
    """One line: how many checks hold, are errata, are undecided."""
    c = Counter(r.status for r in results)
    return (f"{len(results)} checks: {c.get('holds', 0)} hold, {c.get('erratum', 0)} errata, "
            f"{c.get('undecided', 0)} undecided")


def text(results: Sequence[Result]) -> str:
    """Plain table for the terminal: id, equation reference, status, correction or reason."""
    w_id = max(len(r.id) for r in results)
    w_ref = max(len(r.ref) for r in results)
    lines = [f"{'id':{w_id}}  {'where':{w_ref}}  {'status':9}  correction / reason"]
    for r in results:
        lines.append(f"{r.id:{w_id}}  {r.ref:{w_ref}}  {r.status:9}  {_note(r)}".rstrip())
    lines.append(counts(results))
    return "\n".join(lines)


def markdown(results: Sequence[Result]) -> str:
    """GitHub Markdown table; formulas in $...$."""
    lines = ["| id | where | claim | status | correction / reason |", "|---|---|---|---|---|"]
    for r in results:
        note = _note(r)
        if r.status == "erratum" and r.kind == "equality":
            note = f"${note}$"
        note = note.replace("|", r"\|")
        claim = r.claim.replace("|", r"\|")
        lines.append(f"| `{r.id}` | {r.ref} | {claim} | **{r.status}** | {note} |")
    lines.append("")
    lines.append(counts(results))
    return "\n".join(lines) + "\n"


def as_json(results: Sequence[Result]) -> str:
    """A JSON list of objects with id, ref, claim, status, printed, derived, correction, ..."""
    return json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False) + "\n"


def latex(results: Sequence[Result]) -> str:
    """A LaTeX longtable (needs the longtable package)."""
    esc = str.maketrans({"_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#"})
    rows = [r"\begin{longtable}{llll}", r"id & where & status & correction \\ \hline"]
    for r in results:
        note = _note(r)
        note = f"${note}$" if r.status == "erratum" and r.kind == "equality" else note.translate(esc)
        rows.append(f"\\texttt{{{r.id.translate(esc)}}} & {r.ref.translate(esc)} & {r.status} & "
                    f"{note} \\\\")
    rows.append(r"\end{longtable}")
    return "\n".join(rows) + "\n"


def render(results: Sequence[Result], fmt: str) -> str:
    """Dispatch on ``fmt`` (one of FORMATS)."""
    return {"text": text, "markdown": markdown, "json": as_json, "latex": latex}[fmt](results)
