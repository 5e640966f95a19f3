"""The networks: feedback layers, their rule's tensors, losses and whole networks (Sections 3-4).

The floor above :mod:`deepnets.rules` and below :mod:`deepnets.training`; it imports nothing
of either of those but the rules.

* the reference path, the paper's equations in plain torch (:mod:`~deepnets.nn.reference`),
  and the fast path beside it (:mod:`~deepnets.nn.kernels`), chosen once per network by
  :mod:`~deepnets.nn.policy`;
* the layers W, R and their one ``step`` (:mod:`~deepnets.nn.layers`), the user-input checks
  (:mod:`~deepnets.nn.checks`) and R(0) (:mod:`~deepnets.nn.feedback_init`);
* networks: architecture strings (:mod:`~deepnets.nn.arch`), :class:`FeedbackNet`
  (:mod:`~deepnets.nn.network`), any torch model converted (:mod:`~deepnets.nn.convert`) and
  the named ones (:mod:`~deepnets.nn.models`);
* the losses of Section 3.2 (:mod:`~deepnets.nn.losses`) and the alignment probe
  (:mod:`~deepnets.nn.alignment`).

Public names are imported from :mod:`deepnets`; this package's ``__init__`` imports nothing.
"""
