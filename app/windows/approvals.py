"""Approvals dialog: the requests agents are waiting on; Approve or Deny each."""
from __future__ import annotations

import logging
from typing import Any

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import ApprovalModel
from app.qt import (QDialog, QHBoxLayout, QLabel, QPushButton, QShowEvent, Qt, QVBoxLayout,
                    QWidget)
from app.windows.common import StatusLine, heading, make_table, selected_row

log = logging.getLogger(__name__)


class ApprovalsDialog(QDialog):
    """Non-modal: agents keep waiting while it is open; answers go out at once."""

    def __init__(self, bridge: KernelBridge, model: ApprovalModel | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        if model is None:
            model = ApprovalModel(self)
            bridge.approvalsChanged.connect(model.set_pending)
            bridge.kernelEvent.connect(model.apply_event)
        self.model = model
        self.setWindowTitle("DeskPilot — Approvals")
        self.setWindowIcon(app_icon())
        self.setModal(False)
        self.resize(620, 360)

        self.summary = QLabel(self)
        self.table = make_table(model, self, stretch_column=3)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumHeight(self.fontMetrics().height() * 3)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.approve_button = QPushButton("Approve", self)
        self.deny_button = QPushButton("Deny", self)
        self.close_button = QPushButton("Close", self)
        self.approve_button.setToolTip("Let the agent do this once")
        self.deny_button.setToolTip("Refuse; the agent is told it was not approved")
        self.status = StatusLine(self)

        buttons = QHBoxLayout()
        buttons.addWidget(self.approve_button)
        buttons.addWidget(self.deny_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Agents are asking for permission", self))
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.approve_button.clicked.connect(lambda: self.answer(True))
        self.deny_button.clicked.connect(lambda: self.answer(False))
        self.close_button.clicked.connect(self.close)
        self.table.selectionModel().selectionChanged.connect(self._update)
        model.rowsInserted.connect(self._rows_inserted)
        model.rowsRemoved.connect(self._update)
        model.modelReset.connect(self._update)
        model.dataChanged.connect(self._update)
        self._busy: set[Any] = set()
        self._update()

    def selected(self) -> dict[str, Any] | None:
        return self.model.record(selected_row(self.table))

    def select_id(self, approval_id: Any) -> None:
        row = self.model.row_of(approval_id)
        if row >= 0:
            self.table.selectRow(row)

    def _rows_inserted(self, *_: object) -> None:
        if self.selected() is None and self.model.rowCount() > 0:
            self.table.selectRow(0)
        self._update()

    def _update(self, *_: object) -> None:
        count = self.model.rowCount()
        if self.selected() is None and count > 0:
            self.table.selectRow(0)
        self.summary.setText("Nothing is waiting for you." if count == 0 else
                             f"{count} request{'s' if count != 1 else ''} waiting.")
        record = self.selected()
        if record is None:
            self.details.setText("")
        else:
            detail = self.model.index(self.model.row_of(record["id"]), 3).data() or "—"
            self.details.setText(
                f"<b>{_esc(record.get('agent', '?'))}</b> (pid {_esc(record.get('pid', '?'))}) "
                f"wants <b>{_esc(record.get('capability', '?'))}</b><br>"
                f"<span style='color: palette(placeholder-text)'>{_esc(detail)}</span>")
        enabled = record is not None and record["id"] not in self._busy
        self.approve_button.setEnabled(enabled)
        self.deny_button.setEnabled(enabled)

    def answer(self, approve: bool) -> None:
        record = self.selected()
        if record is None:
            return
        approval_id = record["id"]
        self._busy.add(approval_id)
        self._update()

        def done(result: object) -> None:
            self._busy.discard(approval_id)
            self.model.remove(approval_id)
            self.status.info(f"{'Approved' if approve else 'Denied'}: "
                             f"{record.get('agent')} → {record.get('capability')}.")

        def failed(message: str) -> None:
            self._busy.discard(approval_id)
            self.status.error(message)
            self._update()
            self.bridge.refresh_soon()  # it may have expired or been answered elsewhere

        self.bridge.call("answer_approval", approval_id, approve, on_done=done,
                         on_error=failed)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.bridge.refresh()


def _esc(value: object) -> str:
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))

