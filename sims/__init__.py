"""ODE simulations of the paper's dynamics.

- :mod:`sims.scalar`: the decoupled scalar systems (10)/(15) and reduced equations (14)/(19) of Appendix 2.
- :mod:`sims.linear`: BP and the feedback systems (7)/(9) of Section 5 for any depth and widths,
  integrated with ``scipy.integrate.solve_ivp``, batched over an ensemble axis.
- :mod:`sims.initial`: Section 5.1's random and Appendix 2's SVD-structured initial conditions.
- :mod:`sims.epsilon_sweep`: ``python -m sims.epsilon_sweep``, Section 5.1's simulation (Figure 12).
- :mod:`sims.circuits`: Appendix 1's local circuits (eq. (6), rule (3)), ``python -m sims.circuits``.
- :mod:`sims.fileio`: atomic file output used by every package.
- :mod:`sims.cliargs`: up-front checks of a CLI's output paths (one-line errors, exit 2).
"""
