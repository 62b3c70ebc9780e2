"""Ask dialog: one request to the `assistant` agent, its answer shown as it streams.

Starting the agent and following its events both happen off the GUI thread (a pool
call, then an `EventStream`). Live text deltas are shown as they come; the complete
text block (`proc.text`) replaces them when it arrives, so the answer reads the same
whether the kernel streams deltas or only whole blocks.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from app.bridge import EventStream, KernelBridge
from app.icons import app_icon
from app.qt import (QColor, QDialog, QFont, QHBoxLayout, QLineEdit, QPushButton,
                    QTextBrowser, QTextCharFormat, QTextCursor, QVBoxLayout, QWidget)
from app.windows.common import StatusLine, heading

log = logging.getLogger(__name__)

_STATE_TEXT = {"created": "Starting…", "ready": "Thinking…", "running": "Working…",
               "waiting": "Waiting (maybe for your approval)…", "suspended": "Suspended.",
               "terminated": "Finished."}


def _is_delta(kind: str) -> bool:
    return kind in ("proc.delta", "proc.text_delta", "proc.text.delta") or \
        kind.endswith(".delta")


class AskDialog(QDialog):
    def __init__(self, bridge: KernelBridge, parent: QWidget | None = None, *,
                 agent: str = "assistant") -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.agent = agent
        self.pid: int | None = None
        self._stream: EventStream | None = None
        self._live_start: int | None = None
        self._starting = False
        self.setWindowTitle("DeskPilot — Ask")
        self.setWindowIcon(app_icon())
        self.setModal(False)
        self.resize(560, 420)

        self.prompt = QLineEdit(self)
        self.prompt.setPlaceholderText("What should DeskPilot do? e.g. what is eating my disk?")
        self.prompt.setClearButtonEnabled(True)
        self.ask_button = QPushButton("Ask", self)
        self.ask_button.setDefault(True)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("End this request")
        self.output = QTextBrowser(self)
        self.output.setOpenExternalLinks(False)
        self.output.setPlaceholderText("The answer appears here as it is written.")
        self.status = StatusLine(self)
        self.close_button = QPushButton("Close", self)

        row = QHBoxLayout()
        row.addWidget(self.prompt, 1)
        row.addWidget(self.ask_button)
        row.addWidget(self.stop_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Ask DeskPilot", self))
        layout.addLayout(row)
        layout.addWidget(self.output, 1)
        layout.addLayout(bottom)

        self.ask_button.clicked.connect(self.ask)
        self.prompt.returnPressed.connect(self.ask)
        self.stop_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        self.prompt.textChanged.connect(self._update_buttons)
        self._update_buttons()

    @property
    def busy(self) -> bool:
        """A request is starting or being followed (closing the dialog keeps following
        it, so reopening shows the whole answer)."""
        return self._starting or self._stream is not None

    def _update_buttons(self, *_: object) -> None:
        busy = self.busy
        self.prompt.setEnabled(not busy)
        self.ask_button.setEnabled(not busy and bool(self.prompt.text().strip()))
        self.stop_button.setEnabled(self.pid is not None and self._stream is not None)

    # -- asking -------------------------------------------------------------------------
    def ask(self, text: str | None = None) -> None:
        text = (text if isinstance(text, str) else self.prompt.text()).strip()
        if not text or self.busy:
            return
        self.prompt.setText(text)
        self.pid = None
        self._starting = True
        self._update_buttons()
        self._paragraph()
        if self.output.toPlainText():
            self._insert("\n")  # a blank line between one exchange and the next
        self._insert(f"You: {text}\n", bold=True)
        self.status.info("Starting the assistant…", timeout_ms=0)
        self.bridge.call("start_agent", self.agent, text, on_done=self._started,
                         on_error=self._failed)

    def _started(self, result: object) -> None:
        self._starting = False
        pid = result.get("pid") if isinstance(result, dict) else None
        if not isinstance(pid, int):
            self._failed(f"The kernel did not say which process answers ({result!r}).")
            return
        self.pid = pid
        self.status.info(f"Working… (pid {pid})", timeout_ms=0)
        stream = self.bridge.stream(pid, self)
        stream.kernelEvent.connect(self.on_event)
        stream.finished.connect(self._finished)
        stream.failed.connect(self._failed)
        self._stream = stream
        stream.start()
        self._update_buttons()

    def stop(self) -> None:
        if self.pid is not None and self._stream is not None:
            self.status.info("Stopping…", timeout_ms=0)
            self.bridge.call("kill", self.pid, on_error=self.status.error)

    # -- events -------------------------------------------------------------------------
    def on_event(self, event: object) -> None:
        if not isinstance(event, dict):
            return
        kind = str(event.get("type", ""))
        if _is_delta(kind) and isinstance(event.get("text"), str):
            if self._live_start is None:
                self._paragraph()
                self._live_start = self._end().position()
            self._insert(event["text"])
        elif kind == "proc.text" and isinstance(event.get("text"), str):
            if self._live_start is not None:
                cursor = self._end()
                cursor.setPosition(self._live_start, QTextCursor.MoveMode.KeepAnchor)
                cursor.removeSelectedText()
                self._live_start = None
            else:
                self._paragraph()
            self._insert(event["text"])
        elif kind == "proc.tool":
            self._live_start = None
            self._paragraph()
            self._insert(f"→ {event.get('tool', 'tool')} {_short(event.get('args'))}\n",
                         colour="#616161", italic=True)
        elif kind == "proc.tool_result" and event.get("ok") is False:
            self._paragraph()
            self._insert(f"  {event.get('tool', 'tool')} failed: {event.get('text', '')}\n",
                         colour="#c62828", italic=True)
        elif kind == "proc.error":
            self._paragraph()
            self._insert(str(event.get("message") or event.get("text") or event.get("error")
                             or "The agent failed.") + "\n", colour="#c62828")
        elif kind == "proc.state":
            state = str(event.get("state"))
            text = _STATE_TEXT.get(state, state)
            reason = event.get("reason")
            if state == "waiting" and reason:
                text = f"Waiting: {reason}"
            self.status.info(text, timeout_ms=0)
        elif kind == "approval.requested":
            self.status.info(f"Waiting for your approval of {event.get('capability')}…",
                             timeout_ms=0)
        elif kind == "proc.exit":
            status = event.get("status") or event.get("exit_status")
            self.status.info(f"Finished{f' ({status})' if status and status != 'ok' else ''}.",
                             timeout_ms=0)

    def _finished(self) -> None:
        if not self.status.text().startswith("Finished"):
            self.status.info("Finished.", timeout_ms=0)
        self._end_stream()

    def _failed(self, message: str) -> None:
        self.status.error(message)
        self._end_stream()

    def _end_stream(self) -> None:
        self._starting = False
        if self._stream is not None:
            self._stream.stop()
            self._stream.deleteLater()
        self._stream = None
        self._live_start = None
        self.pid = None
        self.prompt.setEnabled(True)
        self.prompt.selectAll()
        self._update_buttons()

    # -- text ---------------------------------------------------------------------------
    def answer_text(self) -> str:
        return self.output.toPlainText()

    def _end(self) -> QTextCursor:
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _paragraph(self) -> None:
        text = self.output.toPlainText()
        if text and not text.endswith("\n"):
            self._insert("\n")

    def _insert(self, text: str, *, bold: bool = False, italic: bool = False,
                colour: str | None = None) -> None:
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.Bold if bold else QFont.Weight.Normal)
        fmt.setFontItalic(italic)
        if colour:
            fmt.setForeground(QColor(colour))
        cursor = self._end()
        cursor.insertText(text, fmt)
        self.output.setTextCursor(cursor)
        self.output.ensureCursorVisible()


def _short(args: Any, limit: int = 120) -> str:
    if args is None:
        return ""
    text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
