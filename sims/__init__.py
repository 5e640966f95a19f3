"""ODE simulations of the paper's dynamics.

- :mod:`sims.scalar`: the decoupled scalar systems (10)/(15) and reduced equations (14)/(19) of Appendix 2.
- :mod:`sims.linear`: BP and the feedback systems (7)/(9) of Section 5 for any depth and widths,
  integrated with ``scipy.integrate.solve_ivp``, batched over an ensemble axis.
- :mod:`sims.initial`: Section 5.1's random and Appendix 2's SVD-structured initial conditions.
- :mod:`sims.epsilon_sweep`: ``python -m sims.epsilon_sweep``, Section 5.1's simulation (Figure 12).
- :mod:`sims.fileio`: atomic file output used by every package.
"""
