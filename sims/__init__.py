"""ODE simulations of the paper's dynamics.

- :mod:`sims.scalar`: the decoupled scalar systems (10)/(15) and reduced equations (14)/(19) of Appendix 2.
- :mod:`sims.linear`: BP and the feedback systems (7)/(9) of Section 5 for any depth and widths,
  integrated with ``scipy.integrate.solve_ivp``, batched over an ensemble axis.
- :mod:`sims.rules`: every rule of the deep-net engine (bp, frfb, urfb, kp, usf, brsf, frsf, dfa,
  wm) as a parameter of the same linear dynamics.
- :mod:`sims.initial`: Section 5.1's random and Appendix 2's SVD-structured initial conditions.
- :mod:`sims.subspace`: the exact reduction of (9) from W(0) = 0 to n_k x n_k matrices (also
  KP with decay and DFA).
- :mod:`sims.until`: integration until e(t) falls to a fraction of e(0), batched.
- :mod:`sims.epsilon`: Section 5.1's simulation (Figure 12); its CLI is
  :mod:`sims.epsilon_sweep` (``python -m sims.epsilon_sweep``).
- :mod:`sims.depth`: the linear dynamics at depths 2-8 (does fixed feedback degrade with depth?);
  :mod:`sims.depth_stats` its statistics; its CLI is :mod:`sims.depth_sweep`.
- :mod:`sims.rule_sweep`: ``python -m sims.rule_sweep``, every engine rule at depths 2-8.
- :mod:`sims.circuits`: Appendix 1's local circuits (eq. (6), rule (3)), ``python -m sims.circuits``.

The CLIs draw their figures with :mod:`figures` (``figures.fig12``, ``figures.depth``,
``figures.circuits``); nothing else in ``sims`` imports ``figures``, which reads ``sims``.

Shared utilities (atomic writes, output-path checks) live in the top-level ``urfb_common``.
"""
