"""Fixtures shared by several test modules (imported by pytest itself)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: thread hand-offs cost more than they save (10x on a busy 2-core box).
    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
