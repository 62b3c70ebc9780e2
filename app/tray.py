"""The tray icon and its menu; owns the shared models and opens the windows.

`TrayApp` is the application's controller. With a system tray it shows the icon
(the kernel's state as a coloured dot, a tooltip with status and running agents)
and a menu; without one it shows the Agents window as an ordinary window that offers
the same entries, and closing that window quits.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.bridge import KernelBridge
from app.icons import app_icon
from app.models import ApprovalModel, ProcessModel
from app.qt import QAction, QApplication, QMenu, QObject, QSystemTrayIcon, QWidget, Signal
from app.windows.agents import AgentsWindow
from app.windows.approvals import ApprovalsDialog
from app.windows.ask import AskDialog
from app.windows.budget import BudgetWindow
from app.windows.common import show_error_box
from app.windows.permissions import PermissionsWindow

log = logging.getLogger(__name__)

Starter = Callable[[], Any]


class TrayApp(QObject):
    #: emitted when the person chose Quit (or closed the standalone window)
    quitRequested = Signal()

    def __init__(self, bridge: KernelBridge, starter: Starter | None = None, *,
                 stopper: Starter | None = None, use_tray: bool = True,
                 parent: QObject | None = None) -> None:
        """`starter` starts the kernel unless one runs (kernel.daemon.ensure_running);
        `stopper` stops it and returns once it is gone (kernel.daemon.stop); without
        one, Stop asks the kernel over the API. Both run on a pool thread."""
        super().__init__(parent)
        self.bridge = bridge
        self.starter = starter
        self.stopper = stopper
        self.use_tray = use_tray
        self.kernel_state = "down"  # running | down | starting | stopping
        self.processes = ProcessModel(self)
        self.approvals = ApprovalModel(self)
        self.windows: dict[str, QWidget] = {}
        self._boxes: list[QWidget] = []
        self._spend_cap_told: str | None = None   # the cap the person was last told about
        self._told_approvals: set[object] = set()  # ids of requests the person was shown

        bridge.processesChanged.connect(self.processes.set_rows)
        bridge.approvalsChanged.connect(self.approvals.set_pending)
        bridge.kernelEvent.connect(self.processes.apply_event)
        bridge.kernelEvent.connect(self.approvals.apply_event)
        bridge.statusChanged.connect(self._on_status)
        bridge.errorOccurred.connect(self.notify_error)
        self.approvals.rowsInserted.connect(self._approvals_added)
        for model in (self.processes, self.approvals):
            for sig in (model.rowsInserted, model.rowsRemoved, model.dataChanged,
                        model.modelReset):
                sig.connect(self._refresh_ui)

        self.menu = QMenu()
        self.status_action = self.menu.addAction("Kernel: not running")
        self.status_action.setEnabled(False)
        self.menu.addSeparator()
        self.ask_action = self._add("Ask…", self.open_ask)
        self.agents_action = self._add("Agents…", self.open_agents)
        self.permissions_action = self._add("Permissions…", self.open_permissions)
        self.budget_action = self._add("Budget…", self.open_budget)
        self.approvals_action = self._add("Approvals (0)…", self.open_approvals)
        self.menu.addSeparator()
        self.kernel_action = self._add("Start kernel", self.toggle_kernel)
        self.menu.addSeparator()
        self.quit_action = self._add("Quit", self.quit)

        self.tray: QSystemTrayIcon | None = None
        if use_tray:
            self.tray = QSystemTrayIcon(app_icon("down"), self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._activated)
        self._refresh_ui()

    def _add(self, text: str, slot: Callable[[], object]) -> QAction:
        action = self.menu.addAction(text)
        action.triggered.connect(lambda _=False: slot())
        return action

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, *, ensure_kernel: bool = True) -> None:
        """Show the tray (or the standalone window), follow the kernel, start it."""
        self.bridge.start()
        if self.tray is not None:
            self.tray.show()
        else:
            window = self.open_agents()
            assert isinstance(window, AgentsWindow)
        if ensure_kernel and self.starter is not None:
            self.start_kernel()

    def shutdown(self) -> None:
        if self.tray is not None:
            self.tray.hide()
        for window in self.windows.values():
            window.close()

    def quit(self) -> None:
        """Leave the app; the kernel and its background agents keep running."""
        log.info("quit requested")
        self.quitRequested.emit()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    # -- kernel -------------------------------------------------------------------------
    def start_kernel(self) -> None:
        if self.starter is None:
            self.notify_error("DeskPilot", "No way to start the kernel was configured.")
            return
        self.kernel_state = "starting"
        self._refresh_ui()
        self.bridge.run(self.starter, on_done=self._kernel_started,
                        on_error=self._kernel_failed, label="start kernel")

    def stop_kernel(self) -> None:
        self.kernel_state = "stopping"
        self._refresh_ui()
        if self.stopper is not None:
            self.bridge.run(self.stopper, on_done=self._kernel_stopped,
                            on_error=self._kernel_failed, label="stop kernel")
        else:
            self.bridge.call("shutdown", on_done=self._kernel_stopped,
                             on_error=self._kernel_failed)

    def _kernel_stopped(self, _: object = None) -> None:
        log.info("kernel stopped")
        self.kernel_state = "down"
        self._refresh_ui()
        self.bridge.refresh()

    def toggle_kernel(self) -> None:
        if self.kernel_state == "running":
            self.stop_kernel()
        elif self.kernel_state == "down":
            self.start_kernel()

    def _kernel_started(self, status: object) -> None:
        log.info("kernel is running: %s", status)
        if isinstance(status, dict):
            self._on_status(status)
        self.bridge.reconnect_now()
        self.bridge.refresh()

    def _kernel_failed(self, message: str) -> None:
        self.kernel_state = "running" if self.bridge.status else "down"
        self._refresh_ui()
        self.notify_error("DeskPilot kernel", message)

    def _on_status(self, status: object) -> None:
        if self.kernel_state == "stopping":
            return  # until the stopper says the kernel is gone
        if isinstance(status, dict) and status.get("running", True):
            self.kernel_state = "running"
        elif self.kernel_state != "starting":
            self.kernel_state = "down"
        self._refresh_ui()

    # -- events -------------------------------------------------------------------------
    def _approvals_added(self, _parent: object, first: int, last: int) -> None:
        """A new pending request, whether its event arrived or a poll found it (the event
        stream may have been reconnecting): the person is told once per request."""
        for row in range(first, last + 1):
            record = self.approvals.record(row)
            if record is None or record.get("id") in self._told_approvals:
                continue
            self._told_approvals.add(record.get("id"))
            agent = record.get("agent", "An agent")
            what = record.get("capability", "a capability")
            self.notify("Approval needed", f"{agent} asks for {what}.")
            dialog = self.open_approvals()
            assert isinstance(dialog, ApprovalsDialog)
            dialog.select_id(record.get("id"))

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            if self.approvals.rowCount():
                self.open_approvals()
            else:
                self.open_agents()

    # -- presentation ---------------------------------------------------------------------
    def tooltip(self) -> str:
        status = self.bridge.status or {}
        if self.kernel_state == "running":
            version = status.get("version")
            pid = status.get("pid")
            extra = ", ".join(x for x in (f"v{version}" if version else "",
                                          f"pid {pid}" if pid else "") if x)
            lines = [f"Kernel running{f' ({extra})' if extra else ''}",
                     f"Agents running: {self.processes.running_count()}"]
            suspended = self.processes.suspended_count()
            if suspended:
                lines[-1] += f" ({suspended} suspended)"
            waits = len(self.processes.budget_waits())
            if waits:
                lines.append(f"Waiting for budget: {waits}")
            cap = self.processes.spend_cap()
            if cap:
                lines.append(f"Spend cap reached ({cap}): nothing is sent until it is "
                             f"raised or the period turns")
        else:
            lines = [{"starting": "Kernel starting…", "stopping": "Kernel stopping…"}
                     .get(self.kernel_state, "Kernel not running")]
        pending = self.approvals.rowCount()
        if pending:
            lines.append(f"Approvals waiting: {pending}")
        return "DeskPilot\n" + "\n".join(lines)

    def icon_state(self) -> str:
        if self.approvals.rowCount():
            return "attention"
        return {"running": "running", "starting": "starting"}.get(self.kernel_state, "down")

    def _tell_spend_cap(self) -> None:
        """One notification when agents start waiting for a spend cap (not on every event)."""
        cap = self.processes.spend_cap() if self.kernel_state == "running" else None
        if cap and cap != self._spend_cap_told:
            self.notify("Spend cap reached",
                        f"Agents wait: {cap} is spent. Raise it with `deskpilot budget set "
                        f"{cap} AMOUNT`, or they go on when the period turns.")
        self._spend_cap_told = cap

    def _refresh_ui(self, *_: object) -> None:
        self._tell_spend_cap()
        pending = self.approvals.rowCount()
        self.approvals_action.setText(f"Approvals ({pending})…")
        running = self.kernel_state == "running"
        self.kernel_action.setText("Stop kernel" if running else "Start kernel")
        self.kernel_action.setEnabled(self.kernel_state in ("running", "down"))
        tip = self.tooltip()
        self.status_action.setText(tip.splitlines()[1])
        if self.tray is not None:
            self.tray.setToolTip(tip)
            self.tray.setIcon(app_icon(self.icon_state()))

    def notify(self, title: str, message: str, error: bool = False) -> None:
        """A tray balloon, or a message box when there is no tray."""
        if self.tray is not None and self.tray.isVisible() and \
                QSystemTrayIcon.supportsMessages():
            icon = (QSystemTrayIcon.MessageIcon.Warning if error
                    else QSystemTrayIcon.MessageIcon.Information)
            self.tray.showMessage(title, message, icon, 8000)
        elif error:
            box = show_error_box(self.windows.get("agents"), title, message)
            self._boxes = [b for b in self._boxes if b.isVisible()] + [box]
        else:
            log.info("%s: %s", title, message)

    def notify_error(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        self.notify(title, message, error=True)

    # -- windows ------------------------------------------------------------------------
    def _show(self, key: str, make: Callable[[], QWidget]) -> QWidget:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = make()
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def open_agents(self) -> QWidget:
        def make() -> QWidget:
            window = AgentsWindow(self.bridge, self.processes, standalone=self.tray is None)
            if self.tray is None:
                window.askRequested.connect(self.open_ask)
                window.permissionsRequested.connect(self.open_permissions)
                window.approvalsRequested.connect(self.open_approvals)
                window.closed.connect(self.quit)
            return window
        return self._show("agents", make)

    def open_permissions(self) -> QWidget:
        return self._show("permissions", lambda: PermissionsWindow(self.bridge))

    def open_budget(self) -> QWidget:
        return self._show("budget", lambda: BudgetWindow(self.bridge))

    def open_approvals(self) -> QWidget:
        return self._show("approvals", lambda: ApprovalsDialog(self.bridge, self.approvals))

    def open_ask(self) -> QWidget:
        window = self._show("ask", lambda: AskDialog(self.bridge))
        assert isinstance(window, AskDialog)
        window.prompt.setFocus()
        return window
