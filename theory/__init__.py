"""Machine-checked Appendix 2 (Theorems 1 and 2): sympy re-derivation of every displayed step
(``theory.checks``, run by ``theory.evaluate``) and numerical tests of the theorems
(``theory.numeric``). Command line: ``python -m theory`` (see docs/theory.md)."""
