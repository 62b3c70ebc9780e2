"""The Qt table models, apart from any widget, fed from the fake kernel."""
from __future__ import annotations

from app.models import ApprovalModel, GrantModel, ProcessModel, RecordRole
from app.qt import QColor, Qt
from tests.fakes.kernel_client import FakeKernelClient


def _cells(model, row: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [model.index(row, c).data() for c in range(model.columnCount())]


def test_process_model_shows_the_kernels_processes(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    kernel = FakeKernelClient()
    a = kernel.add_process("assistant", "running")
    b = kernel.add_process("downloads-organizer", "waiting", "approval 3")
    model = ProcessModel()
    model.set_rows(kernel.processes())
    qtmodeltester.check(model)
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(4)] == \
        ["PID", "Agent", "State", "Reason"]
    assert _cells(model, 0) == [str(a), "assistant", "running", ""]
    assert _cells(model, 1) == [str(b), "downloads-organizer", "waiting", "approval 3"]
    assert model.index(1, 0).data(RecordRole)["agent"] == "downloads-organizer"
    assert isinstance(model.index(0, 2).data(Qt.ItemDataRole.ForegroundRole), QColor)
    assert model.running_count() == 2


def test_process_model_updates_in_place(qtbot, qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    kernel = FakeKernelClient()
    a = kernel.add_process("assistant")
    b = kernel.add_process("sorter")
    model = ProcessModel()
    model.set_rows(kernel.processes())
    qtmodeltester.check(model)
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))

    with qtbot.waitSignal(model.dataChanged):
        model.apply_event({"type": "proc.state", "pid": a, "agent": "assistant",
                           "state": "suspended", "reason": "by user"})
    assert _cells(model, 0)[2:] == ["suspended", "by user"]

    # a poll without `a`, with a new process: a goes, b keeps its row, c is appended
    kernel.procs.pop(a)
    c = kernel.add_process("cleaner", "ready")
    model.set_rows(kernel.processes())
    assert [model.record(i)["pid"] for i in range(model.rowCount())] == [b, c]
    assert not resets, "a poll must not reset the model (it would drop the selection)"

    model.apply_event({"type": "proc.state", "pid": 999, "agent": "new", "state": "created"})
    assert model.row_of(999) == 2
    model.apply_event({"type": "proc.text", "pid": b, "text": "ignored"})
    assert model.record(0)["state"] == "running"


def test_grant_model(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    kernel = FakeKernelClient()
    kernel.grant_table[("assistant", "fs.read:~/Documents/**")] = "allow"
    kernel.grant_table[("assistant", "shell.exec")] = "deny"
    kernel.grant_table[("other", "notify")] = "allow"
    model = GrantModel()
    model.set_rows(kernel.grants("assistant"))
    qtmodeltester.check(model)
    assert [_cells(model, r) for r in range(model.rowCount())] == \
        [["fs.read:~/Documents/**", "allow"], ["shell.exec", "deny"]]
    assert model.index(1, 1).data(Qt.ItemDataRole.ForegroundRole) == QColor("#c62828")
    model.upsert({"capability": "shell.exec", "mode": "ask"})
    assert _cells(model, 1) == ["shell.exec", "ask"]
    assert model.remove("shell.exec") and model.rowCount() == 1
    assert not model.remove("shell.exec")


def test_approval_model_follows_events(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    kernel = FakeKernelClient()
    pid = kernel.add_process("assistant")
    kernel.request_approval(pid, "assistant", "apps.launch:firefox", "launch firefox")
    model = ApprovalModel()
    model.set_pending(kernel.approvals("pending"))
    qtmodeltester.check(model)
    assert _cells(model, 0) == ["1", "assistant", "apps.launch:firefox", "launch firefox"]

    model.apply_event({"type": "approval.requested", "id": 2, "pid": pid, "agent": "assistant",
                       "capability": "shell.exec", "detail": {"cmd": "du -sh ~"}})
    assert model.rowCount() == 2
    assert model.index(1, 3).data() == "cmd=du -sh ~"
    model.apply_event({"type": "approval.resolved", "id": 1, "status": "approved"})
    assert [model.record(i)["id"] for i in range(model.rowCount())] == [2]
    model.set_pending([{"id": 2, "status": "approved"}, {"id": 5, "status": "pending"}])
    assert [model.record(i)["id"] for i in range(model.rowCount())] == [5]
