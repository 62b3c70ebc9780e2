"""Run the real tray (app/tray.py) over the fake kernel and report on it as one JSON
line; then wait for a line on stdin before quitting (so the caller can inspect the X
server meanwhile). Used by test_tray_x11.py: `python -m tests.app.tray_probe`."""
from __future__ import annotations

import json
import sys

from app.bridge import KernelBridge
from app.icons import STATE_COLOURS
from app.qt import QApplication, QColor, QSocketNotifier, QSystemTrayIcon, QTimer
from app.tray import TrayApp
from tests.fakes.kernel_client import FakeKernelClient

BLUE = QColor("#1565c0")  # the icon's background


def _close(a: QColor, b: QColor, slack: int = 40) -> bool:
    return (abs(a.red() - b.red()) < slack and abs(a.green() - b.green()) < slack
            and abs(a.blue() - b.blue()) < slack)


def main() -> int:
    app = QApplication(["deskpilot-tray-probe"])
    app.setApplicationName("deskpilot-tray-probe")
    app.setQuitOnLastWindowClosed(False)
    fake = FakeKernelClient()
    fake.add_process("assistant", "running")
    fake.add_process("downloads-organizer", "waiting")
    bridge = KernelBridge(fake)
    available = QSystemTrayIcon.isSystemTrayAvailable()
    ui = TrayApp(bridge, starter=None, use_tray=available)
    ui.start(ensure_kernel=False)
    tries = 0
    last: list[int] = []

    def look() -> dict[str, object]:
        out: dict[str, object] = {"available": available, "use_tray": ui.tray is not None,
                                  "tries": tries}
        tray = ui.tray
        if tray is None:
            return out
        g = tray.geometry()
        screen = app.primaryScreen()
        shot = screen.grabWindow(0, g.x(), g.y(), g.width(), g.height()).toImage()
        pixels = [shot.pixelColor(x, y) for x in range(shot.width())
                  for y in range(shot.height())]
        out.update(
            visible=tray.isVisible(),
            geometry=[g.x(), g.y(), g.width(), g.height()],
            screen=[screen.size().width(), screen.size().height()],
            tooltip=tray.toolTip(),
            menu=[a.text() for a in ui.menu.actions() if not a.isSeparator()],
            icon_pixels=sum(_close(p, BLUE) for p in pixels),
            dot_pixels=sum(_close(p, QColor(STATE_COLOURS["running"])) for p in pixels),
            area=len(pixels))
        return out

    def report() -> None:
        # wait until the kernel state arrived and the icon is on screen where Qt says,
        # at the same place twice in a row (trayer moves it once it embeds it)
        nonlocal tries, last
        tries += 1
        out = look()
        geometry = out.get("geometry")
        ready = ui.tray is None or (
            ui.kernel_state == "running" and ui.processes.rowCount() == 2
            and isinstance(geometry, list) and geometry == last and geometry[2] > 0
            and int(out["icon_pixels"]) > int(out["area"]) // 4)  # type: ignore[call-overload]
        last = geometry if isinstance(geometry, list) else []
        if not ready and tries < 100:
            QTimer.singleShot(100, report)
            return
        print(json.dumps(out), flush=True)
        # keep the icon up until the caller has looked at the X server and says so
        notifier.setEnabled(True)

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.setEnabled(False)
    notifier.activated.connect(app.quit)

    QTimer.singleShot(0, report)
    code = app.exec()
    ui.shutdown()
    fake.close()
    bridge.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
