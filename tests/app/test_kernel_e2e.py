"""End to end: the tray app's controller and windows against a real kernel process.

The kernel is started the way the app starts it (`kernel.daemon.ensure_running`, run
by the bridge off the GUI thread), the real `KernelClient` talks to it over its Unix
socket, and the assistant runs on the fake Messages API (tests/fixtures/kernel.py).
"""
from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from app.bridge import KernelBridge
from app.qt import Qt
from app.tray import TrayApp
from app.windows.approvals import ApprovalsDialog
from app.windows.ask import AskDialog
from app.windows.permissions import PermissionsWindow
from kernel.client import KernelClient
from kernel.paths import locations
from tests.fakes.replies import text, tool_use
from tests.fixtures.kernel import KernelEnv

SLOW = 30_000  # ms: a kernel process starting, a model turn


@pytest.fixture
def ui(qtbot, kernel_env: KernelEnv, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key in list(os.environ):
        if key.startswith(("ANTHROPIC_", "DESKPILOT_")):
            monkeypatch.delenv(key)
    for key, value in kernel_env.env.items():  # the kernel we start inherits this
        monkeypatch.setenv(key, value)
    where = locations()
    assert where.data.is_relative_to(kernel_env.home)
    started_on: list[int] = []

    def starter() -> dict[str, Any]:
        import kernel.daemon

        started_on.append(threading.get_ident())
        return kernel.daemon.ensure_running(where)

    def stopper() -> bool:
        import kernel.daemon

        return kernel.daemon.stop(where)

    client = KernelClient(where)
    bridge = KernelBridge(client, backoff_min=0.1, backoff_max=1.0)
    controller = TrayApp(bridge, starter, stopper=stopper, use_tray=False)
    controller.started_on = started_on  # type: ignore[attr-defined]
    yield controller
    agents = controller.windows.get("agents")
    if agents is not None:
        agents.closed.disconnect()  # in standalone mode closing it would quit
    controller.shutdown()
    bridge.shutdown()
    client.close()
    for window in controller.windows.values():
        window.deleteLater()


def test_ask_approve_and_grant_through_the_windows(qtbot, ui: TrayApp,
                                                    kernel_env: KernelEnv) -> None:  # type: ignore[no-untyped-def]
    target = kernel_env.work / "approved.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "ok"}),
                             text("Written after approval."))

    ui.start()  # no kernel yet: the app starts one
    qtbot.waitUntil(lambda: ui.kernel_state == "running", timeout=SLOW)
    assert ui.started_on and threading.get_ident() not in ui.started_on  # type: ignore[attr-defined]
    assert "Kernel running" in ui.tooltip()

    ask = ui.open_ask()
    assert isinstance(ask, AskDialog)
    qtbot.keyClicks(ask.prompt, "write approved.txt")
    qtbot.mouseClick(ask.ask_button, Qt.MouseButton.LeftButton)

    # the assistant's default for fs.write is "ask": the request pops the dialog
    qtbot.waitUntil(lambda: "approvals" in ui.windows and ui.approvals.rowCount() == 1,
                    timeout=SLOW)
    dialog = ui.windows["approvals"]
    assert isinstance(dialog, ApprovalsDialog) and dialog.isVisible()
    assert dialog.selected()["capability"] == f"fs.write:{target}"
    assert ui.approvals_action.text() == "Approvals (1)…"
    qtbot.mouseClick(dialog.approve_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: ask.status.text().startswith("Finished"), timeout=SLOW)
    assert ask.answer_text().splitlines() == [
        "You: write approved.txt", f"→ files_write {{\"path\": \"{target}\", \"content\": \"ok\"}}",
        "Written after approval."]
    assert target.read_text() == "ok"
    assert ui.approvals.rowCount() == 0
    qtbot.waitUntil(lambda: any(r["state"] == "terminated" for r in ui.processes.records()),
                    timeout=SLOW)

    # a rule added in the Permissions window is in the kernel at once
    permissions = ui.open_permissions()
    assert isinstance(permissions, PermissionsWindow)
    qtbot.waitUntil(lambda: permissions.agent == "assistant", timeout=SLOW)
    rule = f"fs.read:{kernel_env.work}/**"
    permissions.capability_edit.setText(rule)
    qtbot.mouseClick(permissions.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: permissions.model.row_of(rule) >= 0, timeout=SLOW)
    grants = kernel_env.json("grants", "list", "assistant")
    assert {"capability": rule, "mode": "allow"}.items() <= \
        next(g for g in grants if g["capability"] == rule).items()

    # a refusal from the kernel reaches the person as its sentence, not a traceback
    errors: list[str] = []
    ui.bridge.call("revoke_grant", "assistant", "notify", on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=SLOW)
    assert errors == ["assistant has no rule notify"]

    # Stop kernel, then Start kernel, from the menu
    ui.kernel_action.trigger()
    qtbot.waitUntil(lambda: ui.kernel_state == "down", timeout=SLOW)
    assert ui.kernel_action.text() == "Start kernel" and "not running" in ui.tooltip()
    ui.kernel_action.trigger()
    qtbot.waitUntil(lambda: ui.kernel_state == "running", timeout=SLOW)
    assert len(ui.started_on) == 2  # type: ignore[attr-defined]
