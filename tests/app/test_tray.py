"""The tray controller and `run_app`, offscreen (the real tray: test_tray_x11.py)."""
from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from app.bridge import KernelBridge
from app.launch import run_app
from app.qt import QApplication, QMessageBox, QSystemTrayIcon, QTimer
from app.tray import TrayApp
from app.windows.agents import AgentsWindow
from app.windows.approvals import ApprovalsDialog
from tests.fakes.kernel_client import FakeKernelClient


class Starter:
    """Stands for kernel.daemon.ensure_running; records the thread it ran on."""

    def __init__(self, fake: FakeKernelClient, fail: str | None = None) -> None:
        self.fake, self.fail = fake, fail
        self.threads: list[int] = []

    def __call__(self) -> dict[str, Any]:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise TimeoutError(self.fail)
        self.fake.come_back()
        return {"running": True, "pid": 4242, "socket": "/fake/kernel.sock", "version": "9.9"}


@pytest.fixture
def tray(qtbot, bridge: KernelBridge, fake: FakeKernelClient):  # type: ignore[no-untyped-def]
    ui = TrayApp(bridge, Starter(fake), use_tray=True)
    yield ui
    ui.shutdown()
    for window in ui.windows.values():
        window.deleteLater()


def _menu_texts(ui: TrayApp) -> list[str]:
    return [a.text() for a in ui.menu.actions() if not a.isSeparator()]


def test_menu_tooltip_and_icon_follow_the_kernel(qtbot, tray: TrayApp, bridge: KernelBridge,
                                                 fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.add_process("assistant", "running")
    fake.add_process("sorter", "terminated")
    tray.start(ensure_kernel=False)
    qtbot.waitUntil(lambda: tray.kernel_state == "running" and tray.processes.rowCount() == 2,
                    timeout=3000)
    assert _menu_texts(tray)[1:] == ["Ask…", "Agents…", "Permissions…", "Budget…",
                                     "Approvals (0)…", "Stop kernel", "Quit"]
    assert tray.tray is not None
    assert tray.tray.toolTip() == ("DeskPilot\nKernel running (v0.1.0-fake, pid 4242)\n"
                                   "Agents running: 1")
    assert tray.icon_state() == "running"
    assert not tray.tray.icon().isNull()

    fake.go_away()
    bridge.refresh()
    qtbot.waitUntil(lambda: tray.kernel_state == "down", timeout=3000)
    assert "Kernel not running" in tray.tray.toolTip()
    assert tray.kernel_action.text() == "Start kernel"


def test_approval_request_notifies_and_opens_the_dialog(qtbot, tray: TrayApp,
                                                        fake: FakeKernelClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(tray, "notify",
                        lambda title, message, error=False: shown.append((title, message)))
    tray.start(ensure_kernel=False)
    aid = fake.request_approval(100, "assistant", "apps.launch:firefox", "open firefox")
    qtbot.waitUntil(lambda: "approvals" in tray.windows, timeout=3000)
    dialog = tray.windows["approvals"]
    assert isinstance(dialog, ApprovalsDialog) and dialog.isVisible()
    assert shown == [("Approval needed", "assistant asks for apps.launch:firefox.")]
    assert tray.approvals_action.text() == "Approvals (1)…"
    assert tray.icon_state() == "attention"
    assert "Approvals waiting: 1" in tray.tooltip()
    assert dialog.selected()["id"] == aid


def test_an_approval_found_by_a_poll_is_shown_too_and_only_once(
        qtbot, tray: TrayApp, bridge: KernelBridge, fake: FakeKernelClient,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(tray, "notify",
                        lambda title, message, error=False: shown.append((title, message)))
    tray.start(ensure_kernel=False)
    qtbot.waitUntil(lambda: tray.kernel_state == "running", timeout=3000)
    aid = fake.request_approval(100, "sorter", "fs.delete:~/Downloads/*", announce=False)
    bridge.refresh()   # the poll, a few seconds later in the product
    qtbot.waitUntil(lambda: "approvals" in tray.windows, timeout=3000)
    dialog = tray.windows["approvals"]
    assert isinstance(dialog, ApprovalsDialog) and dialog.selected()["id"] == aid
    bridge.refresh()
    qtbot.wait(200)
    assert shown == [("Approval needed", "sorter asks for fs.delete:~/Downloads/*.")]


def test_start_kernel_runs_the_starter_off_the_gui_thread(qtbot, tray: TrayApp,
                                                          fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.go_away()
    tray.start(ensure_kernel=False)
    qtbot.waitUntil(lambda: tray.kernel_state == "down", timeout=3000)
    tray.kernel_action.trigger()
    qtbot.waitUntil(lambda: tray.kernel_state == "running", timeout=3000)
    assert isinstance(tray.starter, Starter)
    assert tray.starter.threads and threading.get_ident() not in tray.starter.threads

    tray.kernel_action.trigger()  # Stop kernel
    qtbot.waitUntil(lambda: fake.called("shutdown") == [()], timeout=3000)
    qtbot.waitUntil(lambda: tray.kernel_state == "down", timeout=3000)


def test_kernel_start_failure_is_shown_not_raised(qtbot, bridge: KernelBridge,
                                                  fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.go_away()
    ui = TrayApp(bridge, Starter(fake, fail="no answer within 20s"), use_tray=False)
    ui.start()
    qtbot.waitUntil(lambda: any(isinstance(w, QMessageBox) and w.isVisible()
                                for w in QApplication.topLevelWidgets()), timeout=3000)
    box = next(w for w in QApplication.topLevelWidgets()
               if isinstance(w, QMessageBox) and w.isVisible())
    assert "did not answer in time" in box.text() and "Traceback" not in box.text()
    assert ui.kernel_state == "down"
    box.close()
    ui.windows["agents"].closed.disconnect()
    ui.shutdown()


def test_run_app_without_a_tray_shows_the_agents_window(qtbot, fake: FakeKernelClient,
                                                        caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen has none
    fake.add_process("assistant")
    starter = Starter(fake)
    seen: dict[str, Any] = {}

    def look_then_quit() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, AgentsWindow) and w.isVisible()]
        if not windows or windows[0].model.rowCount() == 0:
            QTimer.singleShot(50, look_then_quit)
            return
        seen["window"] = windows[0]
        seen["quit_on_close"] = QApplication.instance().quitOnLastWindowClosed()
        windows[0].close()  # in standalone mode closing the window quits

    QTimer.singleShot(0, look_then_quit)
    with caplog.at_level(logging.WARNING, logger="app.launch"):
        code = run_app([], starter=starter, client=fake)
    assert code == 0
    assert starter.threads and threading.get_ident() not in starter.threads
    window = seen["window"]
    assert window.standalone and window.ask_button.isVisible() is False  # closed now
    assert seen["quit_on_close"] is False
    assert "no system tray" in caplog.text
    window.deleteLater()


def test_budget_waits_and_a_spent_cap_show_in_the_tooltip_and_notify_once(
        qtbot, tray: TrayApp, fake: FakeKernelClient,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(tray, "notify",
                        lambda title, message, error=False: shown.append((title, message)))
    a = fake.add_process("sorter", "running")
    b = fake.add_process("digest", "running")
    tray.start(ensure_kernel=False)
    qtbot.waitUntil(lambda: tray.processes.rowCount() == 2, timeout=3000)
    fake._set_state(a, "waiting", "budget: input tokens per minute")
    qtbot.waitUntil(lambda: "Waiting for budget: 1" in tray.tooltip(), timeout=3000)
    assert shown == [] and "Spend cap" not in tray.tooltip()

    fake._set_state(b, "waiting", "budget: spend cap: usd_per_day reached")
    qtbot.waitUntil(lambda: "Spend cap reached (usd_per_day)" in tray.tooltip(), timeout=3000)
    assert "Waiting for budget: 2" in tray.tooltip()
    fake._set_state(a, "waiting", "budget: spend cap: usd_per_day reached")
    qtbot.waitUntil(lambda: tray.processes.budget_waits().count(
        "budget: spend cap: usd_per_day reached") == 2, timeout=3000)
    assert [t for t, _ in shown] == ["Spend cap reached"]      # once, not per agent
    assert "deskpilot budget set usd_per_day" in shown[0][1]

    fake._set_state(a, "running")
    fake._set_state(b, "running")     # the person raised the cap
    qtbot.waitUntil(lambda: "Spend cap" not in tray.tooltip(), timeout=3000)
    assert "Waiting for budget" not in tray.tooltip()
