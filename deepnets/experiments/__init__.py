"""Experiments: grids of runs, their protocols and their results (Section 4, docs/rules.md).

Above :mod:`deepnets.training`, below the command-line modules (``python -m deepnets.suite``,
``deepnets.rulebench``, ``deepnets.evaluate``):

* the protocols of Section 4 as data (:mod:`~deepnets.experiments.protocols`, no torch);
* the suite's grids behind Figures 4-11 (:mod:`~deepnets.experiments.grid`) and the machinery
  that plans, estimates and trains a grid's runs (:mod:`~deepnets.experiments.runs`), N at once
  or on SLURM (:mod:`~deepnets.experiments.launch`) or packed in one process
  (:mod:`~deepnets.experiments.pack`); the rule benchmark's grid and tables
  (:mod:`~deepnets.experiments.rulebench`);
* scoring a run on the test split (:mod:`~deepnets.experiments.scoring`) into its
  ``test.json`` (:mod:`~deepnets.experiments.testresult`, no torch).

This package's ``__init__`` imports nothing (``deepnets.experiments.protocols`` loads no torch).
"""
