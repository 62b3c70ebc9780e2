"""Budget window: the limits and what is in use, spend per agent, and who waits; change a
limit, which the kernel applies at once to running agents (`set_budget`)."""
from __future__ import annotations

import logging

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import BUDGET_SETTINGS, BudgetModel, SpendModel
from app.qt import (QHBoxLayout, QHideEvent, QLabel, QLineEdit, QPushButton, QShowEvent, QTimer,
                    QVBoxLayout, QWidget)
from app.windows.common import StatusLine, heading, hint, make_table, selected_row

log = logging.getLogger(__name__)

REFRESH_MS = 2000
_LABELS = dict(BUDGET_SETTINGS)


class BudgetWindow(QWidget):
    def __init__(self, bridge: KernelBridge, parent: QWidget | None = None, *,
                 refresh_ms: int = REFRESH_MS) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.limits = BudgetModel(self)
        self.spend = SpendModel(self)
        self.setWindowTitle("DeskPilot — Budget")
        self.setWindowIcon(app_icon())
        self.resize(640, 560)

        self.limits_table = make_table(self.limits, self, stretch_column=2)
        self.spend_table = make_table(self.spend, self, stretch_column=0)
        self.waiting = QLabel(self)
        self.waiting.setWordWrap(True)
        self.value_edit = QLineEdit(self)
        self.value_edit.setPlaceholderText("new value, or “unlimited”")
        self.set_button = QPushButton("Set", self)
        self.status = StatusLine(self)

        change = QHBoxLayout()
        self.change_label = QLabel("Select a setting to change it.", self)
        change.addWidget(self.change_label)
        change.addWidget(self.value_edit, 1)
        change.addWidget(self.set_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Budget for every agent's model calls", self))
        layout.addWidget(self.limits_table, 3)
        layout.addLayout(change)
        layout.addWidget(hint(
            "Changes apply at once, also to agents already running. Policy: fair, "
            "deadline or cheapest. When a spend cap is reached, agents wait until you "
            "raise it or the day or month turns; nothing is sent meanwhile.", self))
        layout.addWidget(self.waiting)
        layout.addWidget(heading("Spend per agent", self))
        layout.addWidget(self.spend_table, 2)
        layout.addWidget(self.status)

        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.load)
        self.limits_table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.value_edit.returnPressed.connect(self.apply)
        self.value_edit.textChanged.connect(self._update_buttons)
        self.set_button.clicked.connect(self.apply)
        bridge.kernelEvent.connect(self._on_event)
        self._update_buttons()

    # -- state --------------------------------------------------------------------------
    def selected_key(self) -> str | None:
        record = self.limits.record(selected_row(self.limits_table))
        return str(record["key"]) if record else None

    def select_key(self, key: str) -> None:
        row = self.limits.row_of(key)
        if row >= 0:
            self.limits_table.selectRow(row)

    def _selection_changed(self, *_: object) -> None:
        key = self.selected_key()
        self.change_label.setText(f"{_LABELS.get(key, key)}:" if key
                                  else "Select a setting to change it.")
        self._update_buttons()

    def _update_buttons(self, *_: object) -> None:
        self.set_button.setEnabled(self.selected_key() is not None
                                   and bool(self.value_edit.text().strip()))

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        self.bridge.call("budget", on_done=self._show, on_error=self.status.error)

    def _show(self, report: object) -> None:
        if not isinstance(report, dict):
            return
        self.limits.set_report(report)
        self.spend.set_report(report)
        lines = [f"{w.get('agent')} (pid {w.get('pid')}) waits: {w.get('reason')}"
                 for w in report.get("waiting") or []]
        if report.get("paused_for"):
            lines.insert(0, f"The provider asked everyone to wait "
                            f"{float(report['paused_for']):.0f} s more (rate limit).")
        self.waiting.setText("\n".join(lines) if lines else "No agent waits for the budget.")

    def _on_event(self, event: object) -> None:
        if isinstance(event, dict) and event.get("type") == "budget.changed" and self.isVisible():
            self.load()

    # -- changes ------------------------------------------------------------------------
    def apply(self) -> None:
        key, value = self.selected_key(), self.value_edit.text().strip()
        if key is None or not value:
            return

        def done(budget: object) -> None:
            shown = budget.get(key) if isinstance(budget, dict) else value
            self.status.info(f"{_LABELS.get(key, key)} is now "
                             f"{'unlimited' if shown is None else shown}; applied to running "
                             "agents.")
            self.value_edit.clear()
            self.load()

        self.bridge.call("set_budget", key, value, on_done=done, on_error=self.status.error)

    # -- Qt events ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.load()
        self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self._timer.stop()
        super().hideEvent(event)
