"""Budget window: the limits and what is in use, spend per agent, who waits, and the price
table; change a limit (`set_budget`) or a model's prices (`set_price`), which the kernel
applies at once, also to agents already running."""
from __future__ import annotations

import logging

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import BUDGET_SETTINGS, BudgetModel, PriceModel, SpendModel
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
        self.prices = PriceModel(self)
        self.setWindowTitle("DeskPilot — Budget")
        self.setWindowIcon(app_icon())
        self.resize(680, 720)

        self.limits_table = make_table(self.limits, self, stretch_column=2)
        self.spend_table = make_table(self.spend, self, stretch_column=0)
        self.waiting = QLabel(self)
        self.waiting.setWordWrap(True)
        self.value_edit = QLineEdit(self)
        self.value_edit.setPlaceholderText("new value, or “unlimited”")
        self.set_button = QPushButton("Set", self)
        self.prices_table = make_table(self.prices, self, stretch_column=0)
        self.price_model = QLineEdit(self)
        self.price_model.setPlaceholderText("model, e.g. claude-sonnet-4-5, or *")
        self.price_input = QLineEdit(self)
        self.price_input.setPlaceholderText("$ input")
        self.price_output = QLineEdit(self)
        self.price_output.setPlaceholderText("$ output")
        self.price_button = QPushButton("Set price", self)
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
        layout.addWidget(heading("Prices, US dollars per million tokens", self))
        layout.addWidget(self.prices_table, 2)
        price = QHBoxLayout()
        price.addWidget(self.price_model, 2)
        price.addWidget(self.price_input, 1)
        price.addWidget(self.price_output, 1)
        price.addWidget(self.price_button)
        layout.addLayout(price)
        layout.addWidget(hint("Cache writes cost 1.25 x and cache reads 0.1 x the input price "
                              "unless set with `deskpilot budget price`.", self))
        layout.addWidget(self.status)

        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.load)
        self.limits_table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.value_edit.returnPressed.connect(self.apply)
        self.value_edit.textChanged.connect(self._update_buttons)
        self.set_button.clicked.connect(self.apply)
        self.prices_table.selectionModel().selectionChanged.connect(self._price_selected)
        self.price_button.clicked.connect(self.apply_price)
        for edit in (self.price_model, self.price_input, self.price_output):
            edit.textChanged.connect(self._update_buttons)
            edit.returnPressed.connect(self.apply_price)
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
        self.price_button.setEnabled(all(e.text().strip() for e in (
            self.price_model, self.price_input, self.price_output)))

    def _price_selected(self, *_: object) -> None:
        record = self.prices.record(selected_row(self.prices_table))
        if record:
            self.price_model.setText(str(record["model"]))
            self.price_input.setText(str(record["input"]))
            self.price_output.setText(str(record["output"]))

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        self.bridge.call("budget", on_done=self._show, on_error=self.status.error)

    def _show(self, report: object) -> None:
        if not isinstance(report, dict):
            return
        self.limits.set_report(report)
        self.spend.set_report(report)
        self.prices.set_report(report)
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

    def apply_price(self) -> None:
        model = self.price_model.text().strip()
        try:
            input_, output = (float(e.text().strip().lstrip("$"))
                              for e in (self.price_input, self.price_output))
        except ValueError:
            self.status.error("Prices are numbers: US dollars per million tokens, e.g. 3 and 15.")
            return
        if not model:
            return

        def done(result: object) -> None:
            self.status.info(f"{model}: ${input_:g} input, ${output:g} output per million "
                             "tokens; applied from the next call on.")
            self.load()

        self.bridge.call("set_price", model, input_, output, on_done=done,
                         on_error=self.status.error)

    # -- Qt events ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.load()
        self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self._timer.stop()
        super().hideEvent(event)
