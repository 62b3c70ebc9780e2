"""app/qt.py is the one door to Qt, and the Qt binding survives long runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import app.qt as qt

APP = Path(__file__).resolve().parents[2] / "app"


def test_only_app_qt_imports_the_binding() -> None:
    offenders = [str(path.relative_to(APP.parent)) for path in APP.rglob("*.py")
                 if path.name != "qt.py" and "PySide6" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_importing_app_does_not_import_qt() -> None:
    code = "import sys, app; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=APP.parent, check=True).stdout.strip()
    assert out == "False"


def test_a_long_run_of_qt_calls_does_not_exhaust_none_or_true(qapp) -> None:  # type: ignore[no-untyped-def]
    # PySide6 6.12.0 on Python 3.11 loses a reference to None per void call and to
    # True per emit, and the interpreter aborts: pyproject excludes that release.
    obj = qt.QObject()
    timer = qt.QTimer()
    for _ in range(20_000):
        obj.setObjectName("x")
        timer.setInterval(5)
        obj.destroyed.emit()
    assert sys.getrefcount(None) > 0 and sys.getrefcount(True) > 0
