"""The signal bridge: background threads in, GUI-thread slots out."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from app.bridge import KernelBridge
from tests.fakes.kernel_client import FakeKernelClient


def test_events_arrive_on_the_gui_thread(qtbot, bridge: KernelBridge,
                                         fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    gui = threading.get_ident()
    seen: list[tuple[dict[str, Any], int]] = []
    bridge.kernelEvent.connect(lambda ev: seen.append((ev, threading.get_ident())))

    fake.emit({"type": "proc.state", "pid": 7, "agent": "a", "state": "running"})
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=3000)

    event, thread = seen[0]
    assert event["pid"] == 7
    assert thread == gui, "slots must run on the GUI thread"
    stream_threads = {c.thread for c in fake.calls if c.name == "events"}
    assert stream_threads and gui not in stream_threads, "the stream is read off the GUI thread"


def test_call_runs_in_the_pool_and_answers_on_the_gui_thread(qtbot, bridge: KernelBridge,
                                                              fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    pid = fake.add_process("assistant")
    got: list[tuple[Any, int]] = []
    bridge.call("suspend", pid, on_done=lambda r: got.append((r, threading.get_ident())))
    qtbot.waitUntil(lambda: bool(got), timeout=3000)
    result, thread = got[0]
    assert result["state"] == "suspended"
    assert thread == threading.get_ident()
    assert fake.called("suspend") == [(pid,)]
    assert all(c.thread != thread for c in fake.calls)


def test_errors_become_sentences(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    bridge.call("kill", 12345, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=3000)
    assert errors == ["no process 12345"]

    fake.go_away()
    with qtbot.waitSignal(bridge.errorOccurred, timeout=3000) as blocker:
        bridge.call("processes")  # no on_error: reported through errorOccurred
    assert blocker.args == ["DeskPilot", "The DeskPilot kernel is not running."]
    assert "Traceback" not in blocker.args[1]


def test_refresh_reports_status_processes_and_approvals(qtbot, bridge: KernelBridge,
                                                        fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    pid = fake.add_process("assistant")
    with qtbot.waitSignals([bridge.statusChanged, bridge.processesChanged,
                            bridge.approvalsChanged], timeout=3000):
        bridge.refresh()
    assert bridge.status and bridge.status["version"] == fake.version

    fake.go_away()
    with qtbot.waitSignal(bridge.statusChanged, timeout=3000,
                          check_params_cb=lambda s: s is None):
        bridge.refresh()
    assert bridge.status is None
    assert pid


def test_a_refresh_asked_for_during_one_in_flight_is_not_lost(
        qtbot, bridge: KernelBridge, fake: FakeKernelClient,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: bridge.status is not None, timeout=3000)  # the start's refresh
    gate, entered = threading.Event(), threading.Event()
    real = fake.processes

    def slow_processes() -> list[dict[str, object]]:
        rows = real()             # read before the change below...
        entered.set()
        gate.wait(5)              # ... and answered after it
        return rows

    monkeypatch.setattr(fake, "processes", slow_processes)
    seen: list[list[dict[str, object]]] = []
    bridge.processesChanged.connect(seen.append)
    bridge.refresh()
    qtbot.waitUntil(entered.is_set, timeout=3000)
    pid = fake.add_process("sorter")
    bridge.refresh()              # e.g. prompted by the new process's event
    monkeypatch.setattr(fake, "processes", real)
    gate.set()
    qtbot.waitUntil(lambda: any(r["pid"] == pid for rows in seen for r in rows), timeout=3000)
    assert [r["pid"] for r in seen[0]] == []   # the stale answer came first, then the new one


def test_event_stream_reconnects_with_back_off(qtbot, bridge: KernelBridge,
                                               fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []
    bridge.kernelEvent.connect(seen.append)
    first = fake.event_connects

    with qtbot.waitSignal(bridge.eventsConnected, timeout=3000,
                          check_params_cb=lambda up: up is False):
        fake.go_away()
    # while the kernel is away the thread keeps probing, with growing pauses
    qtbot.wait(500)
    probes = len(fake.called("status"))
    assert probes >= 2
    qtbot.wait(500)
    assert len(fake.called("status")) - probes <= 3, "back-off must slow the probing down"

    fake.come_back()
    qtbot.waitUntil(lambda: fake.event_connects > first and fake.streams() >= 1, timeout=3000)
    fake.emit({"type": "approval.resolved", "id": 1, "status": "denied"})
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert seen[-1]["type"] == "approval.resolved"


def test_event_stream_of_one_process(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    pid = fake.add_process("assistant")
    fake.emit({"type": "proc.text", "pid": pid, "text": "before we followed"})
    stream = bridge.stream(pid)
    seen: list[dict[str, Any]] = []
    stream.kernelEvent.connect(seen.append)
    with qtbot.waitSignal(stream.finished, timeout=3000):
        stream.start()
        qtbot.waitUntil(lambda: len(seen) == 1, timeout=3000)
        fake.emit({"type": "proc.text", "pid": pid + 1, "text": "another process"})
        fake.emit({"type": "proc.exit", "pid": pid, "status": "ok"})
    assert [e["type"] for e in seen] == ["proc.text", "proc.exit"]
    stream.join()


def test_shutdown_stops_the_event_thread(qtbot, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    b = KernelBridge(fake, backoff_min=0.05)
    b.start()
    qtbot.waitUntil(lambda: fake.streams() == 1, timeout=3000)
    thread = b.events_thread
    assert thread is not None and thread.is_alive()
    fake.close()
    b.shutdown()
    assert not thread.is_alive()
