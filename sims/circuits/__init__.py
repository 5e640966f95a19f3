"""Appendix 1's local circuits: the output error signal of eq. (6) and the feedback shutdown of rule (3).

``python -m sims.circuits`` runs the verifier; ``circuit_output_feedback`` plugs the simulated output
circuit into training (``deepnets.nn.losses.make_loss(..., output_feedback=...)``).
"""

from sims.circuits.feedback import circuit_output_feedback
from sims.circuits.output import OVERLAPS, OutputCircuit, Trajectory, read_signal, rule6, simulate
from sims.circuits.shutdown import ShutdownTrace, simulate_shutdown
from sims.circuits.verify import verify_output, verify_shutdown

__all__ = ["OVERLAPS", "OutputCircuit", "ShutdownTrace", "Trajectory", "circuit_output_feedback",
           "read_signal", "rule6", "simulate", "simulate_shutdown", "verify_output", "verify_shutdown"]
