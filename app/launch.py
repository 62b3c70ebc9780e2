"""`run_app`: the tray application's entry point (`deskpilot app`)."""
from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

Starter = Callable[[], Any]


def default_starter() -> dict[str, Any]:
    """Start the kernel process unless one answers; its status dict."""
    try:
        daemon = importlib.import_module("kernel.daemon")
    except ImportError as exc:
        raise RuntimeError(f"this DeskPilot cannot start its kernel ({exc})") from exc
    return daemon.ensure_running()


def default_stopper() -> bool:
    """Stop the kernel and return once it has let go of its lock (False: none ran)."""
    daemon = importlib.import_module("kernel.daemon")
    return bool(daemon.stop())


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # one line per poll otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)


def run_app(argv: list[str] | None = None, *, starter: Starter | None = None,
            stopper: Starter | None = None, client: Any = None) -> int:
    """Run the tray app until the person quits; the exit status.

    `starter` starts the kernel if none runs (default `kernel.daemon.ensure_running`),
    `stopper` stops it (default `kernel.daemon.stop`); `client` is the kernel client
    (default a `KernelClient` for this user's socket). None of them is called on the
    GUI thread. Quitting the app leaves the kernel and its agents running.
    """
    _configure_logging()
    from app.bridge import KernelBridge
    from app.icons import app_icon
    from app.qt import QApplication, QSystemTrayIcon
    from app.tray import TrayApp
    from app.windows.common import show_error_box

    app = QApplication.instance()
    if app is None:
        qt_argv = list(sys.argv[:1] if argv is None else argv) or ["deskpilot"]
        app = QApplication(qt_argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("DeskPilot")
    app.setApplicationDisplayName("DeskPilot")
    app.setDesktopFileName("deskpilot")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())

    def excepthook(kind: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        # a bug in a slot: log it in full, show the person a sentence
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        show_error_box(None, "DeskPilot", f"Something went wrong: {exc or kind.__name__}")

    previous_hook = sys.excepthook
    sys.excepthook = excepthook

    owns_client = client is None
    if client is None:
        from kernel.client import KernelClient
        client = KernelClient()
    use_tray = QSystemTrayIcon.isSystemTrayAvailable()
    if not use_tray:
        log.warning("no system tray is available on this desktop (no StatusNotifier or "
                    "_NET_SYSTEM_TRAY host); showing the Agents window instead")
    bridge = KernelBridge(client)
    ui = TrayApp(bridge, starter if starter is not None else default_starter,
                 stopper=stopper if stopper is not None else default_stopper,
                 use_tray=use_tray)
    try:
        ui.start()
        return int(app.exec())
    finally:
        ui.shutdown()
        bridge.shutdown()
        if owns_client:
            client.close()
        sys.excepthook = previous_hook
