"""The one module of DeskPilot that imports Qt.

Everything else in `app/` takes its Qt names from here (the pattern of qutebrowser's
`qutebrowser/qt/` package), so the binding is chosen in one place and `kernel/` never
sees Qt at all.
"""
from __future__ import annotations

import ctypes
import logging
import sys

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QRunnable,
    QSize,
    QSocketNotifier,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
    qVersion,
)
from PySide6.QtGui import (
    QAction,
    QBrush,
    QCloseEvent,
    QColor,
    QFont,
    QGuiApplication,
    QIcon,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QShowEvent,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSystemTrayIcon,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


def _guard_singletons() -> bool:
    """Work around a reference-count bug; True when it was found (and neutralised).

    PySide6 6.12.0 (an abi3 wheel) returns None, True and False from its C code without
    taking a new reference when it runs on Python < 3.12, where these objects are not
    yet immortal: every void Qt call, every `Signal.emit()` takes one reference away,
    and after a few thousand calls Python aborts ("Fatal Python error: none_dealloc").
    Where that happens, the singletons get a reference count no process can use up,
    which is what Python 3.12 does for them anyway. The real cure is another PySide6
    release (6.11.x is fine) or Python >= 3.12.
    """
    if sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return False
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    if lost < 32:
        return False
    for obj in (None, True, False, NotImplemented, Ellipsis):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    log.warning("PySide6 %s drops references to None/True/False on Python %d.%d; "
                "applied a workaround (use PySide6-Essentials 6.11 or Python >= 3.12)",
                PYSIDE_VERSION, *sys.version_info[:2])
    return True


#: whether the PySide6 reference-count workaround was needed in this process
REFCOUNT_WORKAROUND = _guard_singletons()

__all__ = [
    "PYSIDE_VERSION", "REFCOUNT_WORKAROUND",
    # QtCore
    "QAbstractTableModel", "QCoreApplication", "QItemSelectionModel", "QModelIndex",
    "QObject", "QPersistentModelIndex", "QPointF", "QRectF", "QRunnable", "QSize",
    "QSocketNotifier", "Qt",
    "QThread", "QThreadPool", "QTimer", "Signal", "Slot", "qVersion",
    # QtGui
    "QAction", "QBrush", "QCloseEvent", "QColor", "QFont", "QGuiApplication", "QIcon",
    "QKeySequence", "QPainter", "QPainterPath", "QPen", "QPixmap", "QShowEvent",
    "QTextCharFormat", "QTextCursor",
    # QtWidgets
    "QAbstractItemView", "QApplication", "QComboBox", "QDialog", "QDialogButtonBox",
    "QFrame", "QHBoxLayout", "QHeaderView", "QLabel", "QLineEdit", "QMenu", "QMessageBox",
    "QPlainTextEdit", "QPushButton", "QSizePolicy", "QSystemTrayIcon", "QTableView",
    "QTextBrowser", "QVBoxLayout", "QWidget",
]
