"""Fixtures for the tray app's tests: Qt offscreen, a fake kernel, a running bridge."""
from __future__ import annotations

import os

# before anything imports Qt: widgets render without a display
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.fakes.kernel_client import FakeKernelClient  # noqa: E402


@pytest.fixture
def fake() -> Iterator[FakeKernelClient]:
    """A fake kernel that fails any call made on this (the GUI) thread."""
    client = FakeKernelClient()
    client.forbid_thread(threading.get_ident())
    yield client
    client.close()
    assert not client.violations, f"client called on the GUI thread: {client.violations}"


@pytest.fixture
def bridge(qtbot, fake: FakeKernelClient):  # type: ignore[no-untyped-def]
    """A started bridge over `fake`, with fast back-off; shut down after the test."""
    from app.bridge import KernelBridge

    b = KernelBridge(fake, poll_interval_ms=60_000, backoff_min=0.05, backoff_max=0.4)
    b.start()
    qtbot.waitUntil(lambda: fake.streams() >= 1, timeout=5000)
    yield b
    fake.close()
    b.shutdown()
    b.deleteLater()
