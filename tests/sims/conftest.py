"""The sweeps' memory check reads the memory available: the tests fix it at 16 GiB, so that a
job the check must refuse (tens of GiB) is refused on any machine, not started."""

from __future__ import annotations

import pytest

import sims.linear


@pytest.fixture(autouse=True)
def sixteen_gib_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sims.linear, "available_memory", lambda: 16 * 2**30)
