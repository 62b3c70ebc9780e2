"""DeskPilot's icon, drawn with QPainter so the tray can show the kernel's state.

A white paper plane on a blue rounded square; a dot in the corner tells the state:
green the kernel runs, grey no kernel, amber something waits for the person.
The same artwork ships as `resources/icons/deskpilot.svg` for installers.
"""
from __future__ import annotations

from functools import lru_cache

from app.qt import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPointF, QRectF, Qt

STATE_COLOURS = {"running": "#2e7d32", "down": "#9e9e9e", "attention": "#f9a825",
                 "starting": "#1e88e5"}
_SIZES = (16, 22, 24, 32, 48, 64, 128)


def draw_pixmap(size: int, state: str | None = None) -> QPixmap:
    """The icon at `size` pixels; `state` adds the status dot."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 64.0, size / 64.0)
    # background
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(QColor("#1565c0")))
    p.drawRoundedRect(QRectF(2, 2, 60, 60), 14, 14)
    # paper plane: upper wing white, lower wing light blue
    upper = QPainterPath(QPointF(10, 31))
    upper.lineTo(54, 12)
    upper.lineTo(28, 38)
    upper.closeSubpath()
    lower = QPainterPath(QPointF(28, 38))
    lower.lineTo(54, 12)
    lower.lineTo(40, 52)
    lower.closeSubpath()
    fold = QPainterPath(QPointF(28, 38))
    fold.lineTo(54, 12)
    fold.lineTo(29, 49)
    fold.closeSubpath()
    p.setBrush(QColor("#ffffff"))
    p.drawPath(upper)
    p.drawPath(lower)
    p.setBrush(QColor("#bbdefb"))
    p.drawPath(fold)
    if state in STATE_COLOURS:
        p.setPen(QPen(QColor("#ffffff"), 4))
        p.setBrush(QColor(STATE_COLOURS[state]))
        p.drawEllipse(QRectF(40, 40, 21, 21))
    p.end()
    return pixmap


@lru_cache(maxsize=None)
def app_icon(state: str | None = None) -> QIcon:
    """The application icon, optionally with a state dot (cached per state)."""
    icon = QIcon()
    for size in _SIZES:
        icon.addPixmap(draw_pixmap(size, state))
    return icon
