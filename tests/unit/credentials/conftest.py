from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return make_harness(tmp_path)
