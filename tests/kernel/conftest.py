"""Fixtures shared by the kernel's unit tests."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(tmp_path / "kernel.sqlite3")
    yield d
    d.close()
