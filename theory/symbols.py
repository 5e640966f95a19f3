"""Symbols of Appendix 2 shared by the model (``theory.model``) and the printed formulas.

Two kinds: the variables of system (15) (positive: the admissible region) and the *notation*
symbols the paper writes in its formulas (F, G, H, F_2, G_2, F_3, G_3, e and derivative names
such as dG_2/dε). A notation symbol stands for a function of the variables; each check says
which derived function it means, so that a printed formula is read exactly in its context.
"""

from __future__ import annotations

import sympy as sp

eps = sp.Symbol("epsilon", positive=True)
lam_T = sp.Symbol("lambda_T", positive=True)
x = sp.Symbol("x", positive=True)
lam_R = sp.Symbol("lambda_R", positive=True)
h = sp.Symbol("h", positive=True)


def lam(i: int) -> sp.Symbol:
    """λ_i, the i-th scalar weight of (15)."""
    return sp.Symbol(f"lambda_{i}", positive=True)


def lam_Ri(i: int) -> sp.Symbol:
    """λ_{R,i}, the feedback strength of layer i in (15) (i = 2..k)."""
    return sp.Symbol(f"lambda_R{i}", positive=True)


# Notation symbols (positive where the paper's functions are positive).
e = sp.Symbol("e", positive=True)
F, G, H = sp.symbols("F G H", positive=True)
F2, G2, F3, G3 = sp.symbols("F_2 G_2 F_3 G_3", positive=True)
dF2, dG2, dF3, dG3, dH = sp.symbols("dF2 dG2 dF3 dG3 dH", real=True)
f_lam, f_eps, Delta = sp.symbols("f_lambda f_epsilon Delta", real=True)

_LATEX = {
    eps: r"\epsilon", lam_T: r"\lambda_T", lam_R: r"\lambda_R", x: "x", h: "h", e: "e",
    F: "F", G: "G", H: "H", F2: "F_2", G2: "G_2", F3: "F_3", G3: "G_3",
    dF2: r"\frac{dF_2}{d\epsilon}", dG2: r"\frac{dG_2}{d\epsilon}",
    dF3: r"\frac{dF_3}{d\epsilon}", dG3: r"\frac{dG_3}{d\epsilon}", dH: r"\frac{dH}{d\epsilon}",
    f_lam: r"\frac{\partial f}{\partial \lambda}", f_eps: r"\frac{\partial f}{\partial \epsilon}",
    Delta: r"\Delta",
}


def latex(expr: sp.Expr) -> str:
    """LaTeX in the paper's notation (λ_{R,i}, F_2, dG_2/dε, ...)."""
    names = dict(_LATEX)
    for s in expr.free_symbols:
        n = s.name
        if n.startswith("lambda_R") and n != "lambda_R":
            names[s] = rf"\lambda_{{R,{n[8:]}}}"
        elif n.startswith("lambda_") and n[7:].isdigit():
            names[s] = rf"\lambda_{{{n[7:]}}}"
    return sp.latex(expr, symbol_names=names)
