"""The one module of DeskPilot that imports Qt.

Everything else in `app/` takes its Qt names from here (the pattern of qutebrowser's
`qutebrowser/qt/` package), so the binding is chosen in one place and `kernel/` never
sees Qt at all.
"""
from __future__ import annotations


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
    QHideEvent,
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



__all__ = [
    "PYSIDE_VERSION",
    # QtCore
    "QAbstractTableModel", "QCoreApplication", "QItemSelectionModel", "QModelIndex",
    "QObject", "QPersistentModelIndex", "QPointF", "QRectF", "QRunnable", "QSize",
    "QSocketNotifier", "Qt",
    "QThread", "QThreadPool", "QTimer", "Signal", "Slot", "qVersion",
    # QtGui
    "QAction", "QBrush", "QCloseEvent", "QColor", "QFont", "QGuiApplication", "QIcon",
    "QHideEvent", "QKeySequence", "QPainter", "QPainterPath", "QPen", "QPixmap", "QShowEvent",
    "QTextCharFormat", "QTextCursor",
    # QtWidgets
    "QAbstractItemView", "QApplication", "QComboBox", "QDialog", "QDialogButtonBox",
    "QFrame", "QHBoxLayout", "QHeaderView", "QLabel", "QLineEdit", "QMenu", "QMessageBox",
    "QPlainTextEdit", "QPushButton", "QSizePolicy", "QSystemTrayIcon", "QTableView",
    "QTextBrowser", "QVBoxLayout", "QWidget",
]
