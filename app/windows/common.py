"""Small widgets and helpers the DeskPilot windows share."""
from __future__ import annotations

import logging

from app.qt import (QAbstractItemView, QAbstractTableModel, QHeaderView, QLabel, QMessageBox,
                    QTableView, QTimer, Qt, QWidget)

log = logging.getLogger(__name__)


class StatusLine(QLabel):
    """One line under a window's controls: what just happened, or what went wrong."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setMinimumHeight(self.fontMetrics().height() + 4)
        self._fade = QTimer(self)
        self._fade.setSingleShot(True)
        self._fade.timeout.connect(self.clear)
        self.is_error = False

    def info(self, text: str, timeout_ms: int = 6000) -> None:
        self.is_error = False
        self.setStyleSheet("color: palette(window-text);")
        self.setText(text)
        if timeout_ms:
            self._fade.start(timeout_ms)

    def error(self, text: str) -> None:
        """Errors stay until the next message."""
        log.info("shown to the person: %s", text)
        self.is_error = True
        self._fade.stop()
        self.setStyleSheet("color: #c62828;")
        self.setText(text)


def make_table(model: QAbstractTableModel, parent: QWidget | None = None,
               stretch_column: int = -1) -> QTableView:
    """A read-only, row-selecting table view for one of the record models."""
    view = QTableView(parent)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 10)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if stretch_column < 0:
        stretch_column = model.columnCount() - 1
    header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
    return view


def selected_row(view: QTableView) -> int:
    rows = view.selectionModel().selectedRows() if view.selectionModel() else []
    return rows[0].row() if rows else -1


def show_error_box(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    """A non-blocking message box for an error the person must see."""
    log.warning("%s: %s", title, message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box


def heading(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.15)
    font.setBold(True)
    label.setFont(font)
    return label


def hint(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(placeholder-text);")
    return label
