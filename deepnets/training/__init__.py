"""Training: the SGD step and its run folder (Sections 3-4).

Above :mod:`deepnets.nn`, below :mod:`deepnets.experiments`:

* the step: :mod:`~deepnets.training.engine` (``train_step``, ``evaluate``, the update orders of
  Remark 1), biases' own step (:mod:`~deepnets.training.bias_step`), torch optimizers
  (:mod:`~deepnets.training.optim`), the step captured in a CUDA graph
  (:mod:`~deepnets.training.capture`) and CPU settings (:mod:`~deepnets.training.cpu`);
* the data: :mod:`~deepnets.training.data` and its miniature copies for tests
  (:mod:`~deepnets.training.minidata`);
* a run: :class:`TrainConfig` (:mod:`~deepnets.training.config`) and the flags of
  ``python -m deepnets.train`` (:mod:`~deepnets.training.runconfig`), trained into a run folder
  by :mod:`~deepnets.training.trainer` (:mod:`~deepnets.training.rundir`: ``config.json`` and
  ``log.jsonl``; :mod:`~deepnets.training.checkpoint`), stopped cleanly
  (:mod:`~deepnets.training.stops`).

Public names are imported from :mod:`deepnets`; this package's ``__init__`` imports nothing.
"""
