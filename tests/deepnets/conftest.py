"""Shared fixtures of the deepnets tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread avoids OpenMP waits on this shared 2-core machine (~40x).

    Session-wide, so it is in force before any module-scoped fixture runs: a result computed
    in a fixture and one computed in a test then use the same thread count (float reductions
    differ in their last bits between thread counts; test_circuit_feedback compares bit for bit).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
