"""Agents window: the kernel's process table, with suspend / resume / kill."""
from __future__ import annotations

import logging
from typing import Any

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import ProcessModel
from app.qt import (QCloseEvent, QHBoxLayout, QLabel, QMessageBox, QPushButton, QShowEvent,
                    Signal, QVBoxLayout, QWidget)
from app.windows.common import StatusLine, heading, make_table, selected_row

log = logging.getLogger(__name__)

_ALIVE = ("created", "ready", "running", "waiting")


class AgentsWindow(QWidget):
    """Lists agent processes; acts on the selected one through the bridge.

    With `standalone=True` (no system tray) it also offers the tray menu's entries
    and closing it quits the application.
    """

    askRequested = Signal()
    permissionsRequested = Signal()
    approvalsRequested = Signal()
    closed = Signal()

    def __init__(self, bridge: KernelBridge, model: ProcessModel | None = None,
                 parent: QWidget | None = None, *, standalone: bool = False) -> None:
        super().__init__(parent)
        self.bridge = bridge
        if model is None:  # not shared with a tray: follow the bridge ourselves
            model = ProcessModel(self)
            bridge.processesChanged.connect(model.set_rows)
            bridge.kernelEvent.connect(model.apply_event)
        self.model = model
        self.standalone = standalone
        self.setWindowTitle("DeskPilot — Agents")
        self.setWindowIcon(app_icon())
        self.resize(640, 400)

        self.kernel_label = QLabel(self)
        self.table = make_table(model, self, stretch_column=3)
        self.suspend_button = QPushButton("Suspend", self)
        self.resume_button = QPushButton("Resume", self)
        self.kill_button = QPushButton("Kill…", self)
        self.refresh_button = QPushButton("Refresh", self)
        self.status = StatusLine(self)
        self.suspend_button.setToolTip("Pause the selected agent at its next step")
        self.resume_button.setToolTip("Let the selected agent continue")
        self.kill_button.setToolTip("End the selected agent for good")

        top = QHBoxLayout()
        top.addWidget(heading("Agent processes", self))
        top.addStretch(1)
        top.addWidget(self.kernel_label)
        buttons = QHBoxLayout()
        for button in (self.suspend_button, self.resume_button, self.kill_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        if standalone:
            nav = QHBoxLayout()
            self.ask_button = QPushButton("Ask…", self)
            self.permissions_button = QPushButton("Permissions…", self)
            self.approvals_button = QPushButton("Approvals…", self)
            self.ask_button.clicked.connect(self.askRequested)
            self.permissions_button.clicked.connect(self.permissionsRequested)
            self.approvals_button.clicked.connect(self.approvalsRequested)
            for button in (self.ask_button, self.permissions_button, self.approvals_button):
                nav.addWidget(button)
            nav.addStretch(1)
            layout.addLayout(nav)
        layout.addWidget(self.status)

        self.suspend_button.clicked.connect(lambda: self._act("suspend"))
        self.resume_button.clicked.connect(lambda: self._act("resume"))
        self.kill_button.clicked.connect(self._kill)
        self.refresh_button.clicked.connect(bridge.refresh)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        model.dataChanged.connect(self._update_buttons)
        model.rowsRemoved.connect(self._update_buttons)
        model.modelReset.connect(self._update_buttons)
        bridge.statusChanged.connect(self._show_kernel)
        self._show_kernel(bridge.status)
        self._update_buttons()

    # -- state --------------------------------------------------------------------------
    def selected(self) -> dict[str, Any] | None:
        return self.model.record(selected_row(self.table))

    def select_pid(self, pid: int) -> None:
        row = self.model.row_of(pid)
        if row >= 0:
            self.table.selectRow(row)

    def _update_buttons(self, *_: object) -> None:
        record = self.selected()
        state = record.get("state") if record else None
        self.suspend_button.setEnabled(state in _ALIVE)
        self.resume_button.setEnabled(state == "suspended")
        self.kill_button.setEnabled(record is not None and state != "terminated")

    def _show_kernel(self, status: object) -> None:
        if isinstance(status, dict):
            version = status.get("version")
            self.kernel_label.setText(f"Kernel running{f' (v{version})' if version else ''}")
            self.kernel_label.setStyleSheet("color: #2e7d32;")
        else:
            self.kernel_label.setText("Kernel not running")
            self.kernel_label.setStyleSheet("color: #c62828;")

    # -- actions ------------------------------------------------------------------------
    def _act(self, method: str) -> None:
        record = self.selected()
        if record is None:
            return
        pid = record["pid"]
        verb = {"suspend": "Suspending", "resume": "Resuming", "kill": "Killing"}[method]
        self.status.info(f"{verb} {record.get('agent', 'agent')} (pid {pid})…")
        self.bridge.call(method, pid, on_done=lambda result: self._done(method, pid, result),
                         on_error=self.status.error)

    def _done(self, method: str, pid: int, result: object) -> None:
        record = result if isinstance(result, dict) else {}
        if record.get("pid") == pid:
            self.model.upsert({k: record[k] for k in ("pid", "agent", "state", "reason")
                               if k in record})
        state = record.get("state")
        if method == "suspend" and state != "suspended" and record.get("suspend_requested"):
            text = f"Process {pid} pauses at its next step."
        elif method == "kill" and state != "terminated" and record.get("kill_requested"):
            text = f"Process {pid} ends at its next step."
        else:
            past = {"suspend": "suspended", "resume": "resumed", "kill": "killed"}[method]
            text = f"Process {pid} {past}."
        self.status.info(text)
        self.bridge.refresh_soon()

    def _kill(self) -> None:
        record = self.selected()
        if record is None:
            return
        answer = QMessageBox.question(
            self, "Kill agent",
            f"End {record.get('agent', 'this agent')} (pid {record['pid']})? "
            "Its unfinished work is lost.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._act("kill")

    # -- Qt events ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.bridge.refresh()

    def closeEvent(self, event: QCloseEvent) -> None:
        super().closeEvent(event)
        self.closed.emit()
