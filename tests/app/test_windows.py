"""The windows, driven as a person would, against the fake kernel.

The `fake` fixture fails any client call made on the GUI thread, so every test here
also checks that the UI only reaches the kernel through the bridge's workers.
"""
from __future__ import annotations

import pytest

from app.bridge import KernelBridge
from app.qt import QMessageBox, Qt
from app.windows.agents import AgentsWindow
from app.windows.approvals import ApprovalsDialog
from app.windows.ask import AskDialog
from app.windows.permissions import PermissionsWindow, valid_capability
from tests.fakes.kernel_client import FakeKernelClient


def _click(qtbot, button) -> None:  # type: ignore[no-untyped-def]
    assert button.isEnabled(), f"{button.text()!r} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# -- agents -----------------------------------------------------------------------------

@pytest.fixture
def agents(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> AgentsWindow:  # type: ignore[no-untyped-def]
    fake.add_process("assistant", "running")
    fake.add_process("downloads-organizer", "suspended", "by user")
    window = AgentsWindow(bridge)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=3000)
    return window


def test_suspend_button_suspends_the_selected_process(qtbot, agents: AgentsWindow,
                                                     fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    assert not agents.suspend_button.isEnabled()  # nothing selected yet
    agents.select_pid(100)
    assert agents.suspend_button.isEnabled() and not agents.resume_button.isEnabled()
    _click(qtbot, agents.suspend_button)
    qtbot.waitUntil(lambda: fake.called("suspend") == [(100,)], timeout=3000)
    qtbot.waitUntil(lambda: agents.model.record(0)["state"] == "suspended", timeout=3000)
    assert agents.resume_button.isEnabled()
    assert "suspended" in agents.status.text()


def test_resume_and_kill(qtbot, agents: AgentsWindow, fake: FakeKernelClient,
                         monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    agents.select_pid(101)
    _click(qtbot, agents.resume_button)
    qtbot.waitUntil(lambda: fake.called("resume") == [(101,)], timeout=3000)

    asked: list[str] = []

    def answer(parent, title, text, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.No if len(asked) == 1 else \
            QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    _click(qtbot, agents.kill_button)  # the person says No
    qtbot.wait(50)
    assert fake.called("kill") == []
    _click(qtbot, agents.kill_button)  # ... then Yes
    qtbot.waitUntil(lambda: fake.called("kill") == [(101,)], timeout=3000)
    assert "downloads-organizer" in asked[0]
    qtbot.waitUntil(lambda: agents.model.record(1)["state"] == "terminated", timeout=3000)
    assert not agents.kill_button.isEnabled()


def test_agents_window_shows_kernel_refusals(qtbot, agents: AgentsWindow,
                                             fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    agents.select_pid(100)
    fake.procs[100]["state"] = "terminated"  # ended meanwhile; the window does not know yet
    _click(qtbot, agents.suspend_button)
    qtbot.waitUntil(lambda: agents.status.is_error, timeout=3000)
    assert agents.status.text() == "process 100 has terminated"


def test_agents_window_follows_state_events(qtbot, agents: AgentsWindow,
                                            fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.emit({"type": "proc.state", "pid": 100, "agent": "assistant", "state": "waiting",
               "reason": "approval 1"})
    qtbot.waitUntil(lambda: agents.model.record(0)["state"] == "waiting", timeout=3000)
    assert agents.model.record(0)["reason"] == "approval 1"


# -- permissions ------------------------------------------------------------------------

@pytest.fixture
def permissions(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> PermissionsWindow:  # type: ignore[no-untyped-def]
    fake.grant_table[("assistant", "fs.read:~/Documents/**")] = "allow"
    fake.grant_table[("downloads-organizer", "fs.write:~/Downloads/**")] = "allow"
    window = PermissionsWindow(bridge, agent="assistant")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.agent == "assistant" and window.model.rowCount() == 1,
                    timeout=3000)
    return window


def test_permissions_add_rule(qtbot, permissions: PermissionsWindow,
                              fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClicks(permissions.capability_edit, "apps.launch:firefox")
    permissions.new_mode.setCurrentText("ask")
    _click(qtbot, permissions.add_button)
    qtbot.waitUntil(lambda: fake.called("set_grant") ==
                    [("assistant", "apps.launch:firefox", "ask")], timeout=3000)
    qtbot.waitUntil(lambda: permissions.model.row_of("apps.launch:firefox") >= 0, timeout=3000)
    assert fake.grant_table[("assistant", "apps.launch:firefox")] == "ask"
    assert permissions.capability_edit.text() == ""


def test_permissions_change_mode_and_revoke(qtbot, permissions: PermissionsWindow,
                                            fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    cap = "fs.read:~/Documents/**"
    permissions.select_capability(cap)
    assert not permissions.mode_buttons["allow"].isEnabled()  # it already is "allow"
    _click(qtbot, permissions.mode_buttons["deny"])
    qtbot.waitUntil(lambda: fake.called("set_grant") == [("assistant", cap, "deny")],
                    timeout=3000)
    qtbot.waitUntil(lambda: permissions.model.record(0)["mode"] == "deny", timeout=3000)

    permissions.select_capability(cap)
    _click(qtbot, permissions.revoke_button)
    qtbot.waitUntil(lambda: fake.called("revoke_grant") == [("assistant", cap)], timeout=3000)
    qtbot.waitUntil(lambda: permissions.model.rowCount() == 0, timeout=3000)
    assert ("assistant", cap) not in fake.grant_table


def test_permissions_switch_agent_and_reject_bad_capability(qtbot, permissions: PermissionsWindow,
                                                            fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    permissions.agent_combo.setCurrentText("downloads-organizer")
    qtbot.waitUntil(lambda: permissions.model.row_of("fs.write:~/Downloads/**") == 0,
                    timeout=3000)
    assert fake.called("grants")[-1] == ("downloads-organizer",)
    qtbot.keyClicks(permissions.capability_edit, "do whatever you like")
    _click(qtbot, permissions.add_button)
    assert permissions.status.is_error and "not a capability" in permissions.status.text()
    qtbot.wait(50)
    assert fake.called("set_grant") == []


def test_permissions_show_rules_changed_elsewhere(qtbot, permissions: PermissionsWindow,
                                                 fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.grant_table[("assistant", "notify")] = "allow"  # e.g. `deskpilot grants allow`
    fake.emit({"type": "grants.changed", "agent": "assistant", "capability": "notify",
               "mode": "allow"})
    qtbot.waitUntil(lambda: permissions.model.row_of("notify") >= 0, timeout=3000)


@pytest.mark.parametrize("text,ok", [
    ("fs.read:~/Documents/**", True), ("process.list", True), ("mcp.github.create_issue", True),
    ("net.fetch:*.wikipedia.org", True), ("shell", False), ("fs.read:", False), ("", False),
])
def test_capability_syntax(text: str, ok: bool) -> None:
    assert valid_capability(text) is ok


# -- approvals --------------------------------------------------------------------------

def test_approval_event_shows_and_approve_answers_it(qtbot, bridge: KernelBridge,
                                                     fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    dialog = ApprovalsDialog(bridge)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: "Nothing" in dialog.summary.text(), timeout=3000)
    assert not dialog.approve_button.isEnabled()

    pid = fake.add_process("assistant", "waiting")
    aid = fake.request_approval(pid, "assistant", "settings.write:appearance.dark-mode",
                                "turn on dark mode")
    qtbot.waitUntil(lambda: dialog.model.row_of(aid) == 0, timeout=3000)
    assert "settings.write:appearance.dark-mode" in dialog.details.text()
    assert dialog.summary.text() == "1 request waiting."

    _click(qtbot, dialog.approve_button)
    qtbot.waitUntil(lambda: fake.called("answer_approval") == [(aid, True)], timeout=3000)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 0, timeout=3000)
    assert fake.approval_table[aid]["status"] == "approved"
    assert dialog.status.text().startswith("Approved")


def test_deny_and_stale_request(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    dialog = ApprovalsDialog(bridge)
    qtbot.addWidget(dialog)
    dialog.show()
    a = fake.request_approval(1, "sorter", "fs.delete:~/Downloads/*", "old.zip")
    b = fake.request_approval(1, "sorter", "shell.exec", "rm -rf ~/tmp")
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 2, timeout=3000)
    dialog.select_id(b)
    _click(qtbot, dialog.deny_button)
    qtbot.waitUntil(lambda: fake.called("answer_approval") == [(b, False)], timeout=3000)
    qtbot.waitUntil(lambda: dialog.model.row_of(b) < 0, timeout=3000)

    fake.approval_table[a]["status"] = "expired"  # timed out in the kernel; no event yet
    dialog.select_id(a)
    _click(qtbot, dialog.approve_button)
    qtbot.waitUntil(lambda: dialog.status.is_error, timeout=3000)
    assert "already expired" in dialog.status.text()
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 0, timeout=3000)  # refreshed away


# -- ask --------------------------------------------------------------------------------

def test_ask_streams_the_answer(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.replies["assistant"] = ["Your disk ", "is mostly ", "videos."]
    dialog = AskDialog(bridge)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.prompt, "what is eating my disk?")
    _click(qtbot, dialog.ask_button)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Finished"), timeout=3000)
    text = dialog.answer_text()
    assert fake.called("start_agent") == [("assistant", "what is eating my disk?")]
    assert text == "You: what is eating my disk?\nYour disk is mostly videos."
    qtbot.waitUntil(lambda: dialog.prompt.isEnabled(), timeout=3000)


def test_ask_shows_blocks_tools_and_live_progress(qtbot, bridge: KernelBridge,
                                                  fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    dialog = AskDialog(bridge)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.ask("turn on dark mode")
    qtbot.waitUntil(lambda: dialog.pid is not None, timeout=3000)
    pid = dialog.pid
    assert not dialog.ask_button.isEnabled() and dialog.stop_button.isEnabled()
    fake.emit({"type": "proc.text", "pid": pid, "text": "I'll switch it on."})
    fake.emit({"type": "proc.tool", "pid": pid, "tool": "settings_write",
               "args": {"key": "appearance.dark-mode", "value": True}})
    fake.emit({"type": "proc.delta", "pid": pid, "text": "Do"})
    fake.emit({"type": "proc.delta", "pid": pid, "text": "ne"})
    qtbot.waitUntil(lambda: dialog.answer_text().endswith("Done"), timeout=3000)
    fake.emit({"type": "proc.text", "pid": pid, "text": "Done."})
    fake.emit({"type": "proc.exit", "pid": pid, "status": "ok"})
    qtbot.waitUntil(lambda: dialog.pid is None, timeout=3000)
    lines = dialog.answer_text().splitlines()
    assert lines[0] == "You: turn on dark mode"
    assert lines[1] == "I'll switch it on."
    assert lines[2].startswith("→ settings_write {\"key\": \"appearance.dark-mode\"")
    assert lines[3] == "Done."


def test_ask_without_kernel_says_so(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    dialog = AskDialog(bridge)
    qtbot.addWidget(dialog)
    fake.go_away()
    dialog.ask("hello")
    qtbot.waitUntil(lambda: dialog.status.is_error, timeout=3000)
    assert dialog.status.text() == "The DeskPilot kernel is not running."
    assert dialog.prompt.isEnabled()
