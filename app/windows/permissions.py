"""Permissions window: one agent's capability rules; add, change and revoke them.

Every change goes to the kernel at once (`set_grant` / `revoke_grant`), so it also
applies to instances of the agent that are already running.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import GrantModel
from app.qt import (QComboBox, QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QShowEvent,
                    QVBoxLayout, QWidget)
from app.windows.common import StatusLine, heading, hint, make_table, selected_row

log = logging.getLogger(__name__)

MODES = ("allow", "ask", "deny")
#: `domain.verb[:scope]`, also `mcp.<server>.<tool>`
CAPABILITY_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[A-Za-z0-9_*-]+)+(:\S.*)?$")


def valid_capability(text: str) -> bool:
    return bool(CAPABILITY_RE.match(text.strip()))


class PermissionsWindow(QWidget):
    def __init__(self, bridge: KernelBridge, parent: QWidget | None = None, *,
                 agent: str | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = GrantModel(self)
        self._wanted_agent = agent
        self.setWindowTitle("DeskPilot — Permissions")
        self.setWindowIcon(app_icon())
        self.resize(600, 460)

        self.agent_combo = QComboBox(self)
        self.agent_combo.setMinimumContentsLength(24)
        self.agent_combo.setPlaceholderText("(no agents)")
        self.table = make_table(self.model, self, stretch_column=0)
        self.mode_buttons = {mode: QPushButton(f"Set to {mode}", self) for mode in MODES}
        self.revoke_button = QPushButton("Revoke", self)
        self.revoke_button.setToolTip("Remove the rule; the agent's default applies again")
        self.capability_edit = QLineEdit(self)
        self.capability_edit.setPlaceholderText("e.g. fs.read:~/Documents/**")
        self.new_mode = QComboBox(self)
        self.new_mode.addItems(MODES)
        self.add_button = QPushButton("Add rule", self)
        self.status = StatusLine(self)

        pick = QHBoxLayout()
        pick.addWidget(QLabel("Agent:", self))
        pick.addWidget(self.agent_combo, 1)
        change = QHBoxLayout()
        for button in self.mode_buttons.values():
            change.addWidget(button)
        change.addStretch(1)
        change.addWidget(self.revoke_button)
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        add = QHBoxLayout()
        add.addWidget(QLabel("New rule:", self))
        add.addWidget(self.capability_edit, 1)
        add.addWidget(self.new_mode)
        add.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("What each agent may do", self))
        layout.addLayout(pick)
        layout.addWidget(self.table, 1)
        layout.addLayout(change)
        layout.addWidget(line)
        layout.addLayout(add)
        layout.addWidget(hint(
            "Capabilities are domain.verb[:scope], e.g. apps.launch:firefox, "
            "settings.write:appearance.dark-mode, fs.write:/tmp/work/**. "
            "Deny wins over ask, ask over allow. Changes apply at once, also to agents "
            "already running.", self))
        layout.addWidget(self.status)

        self.agent_combo.currentTextChanged.connect(self._agent_changed)
        for mode, button in self.mode_buttons.items():
            button.clicked.connect(lambda _=False, m=mode: self.change_mode(m))
        self.revoke_button.clicked.connect(self.revoke)
        self.add_button.clicked.connect(self.add_rule)
        self.capability_edit.returnPressed.connect(self.add_rule)
        self.capability_edit.textChanged.connect(self._update_buttons)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.model.rowsRemoved.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        bridge.kernelEvent.connect(self._on_event)
        self._update_buttons()

    # -- state --------------------------------------------------------------------------
    @property
    def agent(self) -> str:
        return self.agent_combo.currentText().strip()

    def selected(self) -> dict[str, Any] | None:
        return self.model.record(selected_row(self.table))

    def select_agent(self, name: str) -> None:
        self._wanted_agent = name
        index = self.agent_combo.findText(name)
        if index >= 0:
            self.agent_combo.setCurrentIndex(index)

    def select_capability(self, capability: str) -> None:
        row = self.model.row_of(capability)
        if row >= 0:
            self.table.selectRow(row)

    def _update_buttons(self, *_: object) -> None:
        record = self.selected()
        for mode, button in self.mode_buttons.items():
            button.setEnabled(record is not None and record.get("mode") != mode)
        self.revoke_button.setEnabled(record is not None)
        self.add_button.setEnabled(bool(self.agent) and bool(self.capability_edit.text().strip()))

    # -- loading ------------------------------------------------------------------------
    def load_agents(self) -> None:
        self.bridge.call("agents", on_done=self._set_agents, on_error=self.status.error)

    def _set_agents(self, agents: object) -> None:
        rows = agents if isinstance(agents, list) else []
        names = sorted({str(a["name"]) for a in rows if isinstance(a, dict) and a.get("name")})
        current = self._wanted_agent or self.agent
        self.agent_combo.blockSignals(True)
        self.agent_combo.clear()
        self.agent_combo.addItems(names)
        index = self.agent_combo.findText(current) if current else -1
        self.agent_combo.setCurrentIndex(index if index >= 0 else (0 if names else -1))
        self.agent_combo.blockSignals(False)
        self._agent_changed(self.agent)

    def _agent_changed(self, name: str) -> None:
        self.model.clear()
        self._update_buttons()
        if name:
            self._wanted_agent = name
            self.load_grants()

    def load_grants(self) -> None:
        agent = self.agent
        if not agent:
            return

        def show(rows: object) -> None:
            if agent == self.agent:  # the person may have picked another agent meanwhile
                records = rows if isinstance(rows, list) else []
                self.model.set_rows(r for r in records if r.get("agent", agent) == agent)
                self._update_buttons()

        self.bridge.call("grants", agent, on_done=show, on_error=self.status.error)

    def _on_event(self, event: object) -> None:
        # rules changed elsewhere (the CLI, another window): show them
        if isinstance(event, dict) and event.get("type") == "grants.changed" \
                and event.get("agent") == self.agent and self.isVisible():
            self.load_grants()

    # -- changes ------------------------------------------------------------------------
    def add_rule(self) -> None:
        capability = self.capability_edit.text().strip()
        if not self.agent or not capability:
            return
        if not valid_capability(capability):
            self.status.error(f"“{capability}” is not a capability: use domain.verb[:scope], "
                              "for example fs.read:~/Documents/**")
            return
        self._set(capability, self.new_mode.currentText(), added=True)

    def change_mode(self, mode: str) -> None:
        record = self.selected()
        if record is not None:
            self._set(str(record["capability"]), mode, added=False)

    def _set(self, capability: str, mode: str, *, added: bool) -> None:
        agent = self.agent

        def done(result: object) -> None:
            if agent == self.agent:
                self.model.upsert({"agent": agent, "capability": capability, "mode": mode})
                self.select_capability(capability)
                if added:
                    self.capability_edit.clear()
            self.status.info(f"{agent}: {capability} is now “{mode}”.")
            self.load_grants()

        self.bridge.call("set_grant", agent, capability, mode, on_done=done,
                         on_error=self.status.error)

    def revoke(self) -> None:
        record = self.selected()
        if record is None:
            return
        agent, capability = self.agent, str(record["capability"])

        def done(result: object) -> None:
            if agent == self.agent:
                self.model.remove(capability)
            self.status.info(f"{agent}: rule for {capability} revoked.")
            self.load_grants()

        self.bridge.call("revoke_grant", agent, capability, on_done=done,
                         on_error=self.status.error)

    # -- Qt events ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.load_agents()
