"""The signal bridge between the kernel client and the UI.

The UI thread never talks HTTP. Three kinds of background work feed it, all through Qt
signals of a QObject living on the GUI thread (queued across threads by Qt):

* client calls (`call`, `run`) run in a QThreadPool; results and errors come back to
  the callbacks on the GUI thread;
* one event thread consumes `client.events()` and re-emits every event dict as
  `kernelEvent`; when the kernel goes away it reconnects with exponential back-off;
* a QTimer polls a snapshot (status, processes, pending approvals) as a safety net
  for missed events, and after every reconnect or state-changing event.

`EventStream` follows one process's events (the Ask dialog uses it).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.qt import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
ErrorCallback = Callable[[str], None]

#: events after which the polled snapshot is refreshed at once
_REFRESH_ON = ("proc.", "approval.", "kernel.")


def describe_error(exc: BaseException) -> str:
    """A sentence for the person, never a traceback."""
    # imported here so the bridge stays importable in tests without a kernel package
    from kernel.client import KernelError, KernelUnavailable

    if isinstance(exc, KernelUnavailable):
        return "The DeskPilot kernel is not running."
    if isinstance(exc, KernelError):
        return str(exc) or f"The kernel refused the request (HTTP {exc.status})."
    if isinstance(exc, TimeoutError):
        return f"The kernel did not answer in time ({exc})." if str(exc) else \
            "The kernel did not answer in time."
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_unavailable(exc: BaseException) -> bool:
    from kernel.client import KernelUnavailable

    return isinstance(exc, KernelUnavailable)


class _Job(QRunnable):
    """Runs one callable on a pool thread and reports back through the bridge."""

    def __init__(self, bridge: "KernelBridge", token: int, fn: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        super().__init__()
        self._bridge, self._token, self._fn, self._args = bridge, token, fn, args
        self.setAutoDelete(True)

    def run(self) -> None:  # pool thread
        try:
            ok, value = True, self._fn(*self._args)
        except Exception as exc:  # delivered to the person as a message
            if not _is_unavailable(exc):
                log.debug("background call failed", exc_info=True)
            ok, value = False, exc
        try:
            self._bridge._finished.emit(self._token, ok, value)
        except RuntimeError:  # the bridge was deleted meanwhile (application quitting)
            pass


class KernelBridge(QObject):
    """Owns the kernel client; the only way the UI reaches it."""

    #: every kernel event dict, delivered on the GUI thread
    kernelEvent = Signal(object)
    #: the kernel's status dict, or None when no kernel answers
    statusChanged = Signal(object)
    processesChanged = Signal(object)
    approvalsChanged = Signal(object)
    #: True when the event stream is connected, False when it was lost
    eventsConnected = Signal(bool)
    #: (title, message) of a failure nobody else handled
    errorOccurred = Signal(str, str)
    # internal: (token, ok, value) from a pool thread
    _finished = Signal(int, bool, object)

    def __init__(self, client: Any, parent: QObject | None = None, *,
                 poll_interval_ms: int = 3000, backoff_min: float = 0.5,
                 backoff_max: float = 15.0) -> None:
        super().__init__(parent)
        self._client = client
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(4)
        self._tokens = itertools.count(1)
        self._pending: dict[int, tuple[Callback | None, ErrorCallback | None, str]] = {}
        self._finished.connect(self._deliver)
        self.status: dict[str, Any] | None = None
        self._refreshing = False
        self._refresh_again = False
        self._poll = QTimer(self)
        self._poll.setInterval(poll_interval_ms)
        self._poll.timeout.connect(self.refresh)
        self._soon = QTimer(self)  # coalesces bursts of events into one refresh
        self._soon.setSingleShot(True)
        self._soon.setInterval(150)
        self._soon.timeout.connect(self.refresh)
        self._backoff = (backoff_min, backoff_max)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.eventsConnected.connect(self._on_events_connected)
        self.kernelEvent.connect(self._on_event)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the event thread and polling; refresh once right away."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._event_loop, name="deskpilot-events",
                                            daemon=True)
            self._thread.start()
        self._poll.start()
        self.refresh()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop polling and the event thread; wait for running calls to end."""
        self._poll.stop()
        self._soon.stop()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # a real SSE read may block; it is a daemon
            self._thread = None
        self._pool.waitForDone(wait_ms)
        self._pending.clear()

    def reconnect_now(self) -> None:
        """Cut a back-off wait short (e.g. right after starting the kernel)."""
        self._wake.set()

    @property
    def events_thread(self) -> threading.Thread | None:
        return self._thread

    # -- calls ----------------------------------------------------------------------
    def call(self, method: str, *args: Any, on_done: Callback | None = None,
             on_error: ErrorCallback | None = None) -> int:
        """Run `client.<method>(*args)` on a pool thread. Callbacks run on the GUI thread:
        `on_done(result)` or `on_error(message)`; without `on_error` failures are emitted
        as `errorOccurred`."""
        fn = getattr(self._client, method)
        return self.run(fn, *args, on_done=on_done, on_error=on_error, label=method)

    def run(self, fn: Callable[..., Any], *args: Any, on_done: Callback | None = None,
            on_error: ErrorCallback | None = None, label: str = "") -> int:
        """Run any blocking callable on a pool thread (see `call`)."""
        token = next(self._tokens)
        self._pending[token] = (on_done, on_error, label or getattr(fn, "__name__", "call"))
        self._pool.start(_Job(self, token, fn, args))
        return token

    def stream(self, pid: int, parent: QObject | None = None) -> "EventStream":
        """A (not yet started) follower of one process's events."""
        return EventStream(self._client, pid, parent)

    def wait_idle(self, timeout_ms: int = 5000) -> bool:
        """Wait for pool threads (tests, shutdown). Results still arrive via the loop."""
        return self._pool.waitForDone(timeout_ms)

    @Slot(int, bool, object)
    def _deliver(self, token: int, ok: bool, value: object) -> None:
        on_done, on_error, label = self._pending.pop(token, (None, None, ""))
        if ok:
            if on_done is not None:
                on_done(value)
            return
        assert isinstance(value, BaseException)
        message = describe_error(value)
        log.log(logging.DEBUG if on_error is not None else logging.INFO,
                "%s failed: %s", label, message)
        if on_error is not None:
            on_error(message)
        else:
            self.errorOccurred.emit("DeskPilot", message)

    # -- polling --------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Fetch status, processes and pending approvals in the background.

        A refresh asked for while one is in flight runs again when it ends: the one in
        flight may have read the kernel before the change that prompted the request."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing, self._refresh_again = True, False
        self.run(self._snapshot, on_done=self._apply_snapshot, on_error=self._snapshot_failed,
                 label="refresh")

    def refresh_soon(self) -> None:
        self._soon.start()

    def _snapshot(self) -> dict[str, Any]:  # pool thread
        return {"status": self._client.status(), "processes": self._client.processes(),
                "approvals": self._client.approvals("pending")}

    def _apply_snapshot(self, snap: Any) -> None:
        self._refreshing = False
        self.status = dict(snap["status"] or {})
        self.statusChanged.emit(self.status)
        self.processesChanged.emit(list(snap["processes"] or []))
        self.approvalsChanged.emit(list(snap["approvals"] or []))
        if self._refresh_again:
            self.refresh()

    def _snapshot_failed(self, message: str) -> None:
        self._refreshing = False
        self._refresh_again = False
        if self.status is not None:
            log.warning("kernel went away: %s", message)
        self.status = None
        self.statusChanged.emit(None)

    @Slot(bool)
    def _on_events_connected(self, connected: bool) -> None:
        if connected:
            self.refresh()

    @Slot(object)
    def _on_event(self, event: object) -> None:
        kind = str(event.get("type", "")) if isinstance(event, dict) else ""
        if kind.startswith(_REFRESH_ON):
            self.refresh_soon()

    # -- event thread ---------------------------------------------------------------
    def _event_loop(self) -> None:  # background thread
        from kernel.client import KernelError, KernelUnavailable

        low, high = self._backoff
        delay = low
        while not self._stop.is_set():
            opened = time.monotonic()
            received = False
            connected = False
            try:
                self._client.status()  # the SSE generator connects lazily; probe first
                connected = True
                self._emit(self.eventsConnected, True)
                for event in self._client.events():
                    if self._stop.is_set():
                        return
                    received = True
                    self._emit(self.kernelEvent, event)
            except KernelUnavailable as exc:
                log.debug("event stream: kernel unavailable: %s", exc)
            except KernelError as exc:
                log.warning("event stream refused: %s", exc)
            except Exception:  # keep the thread alive whatever the stream does
                log.exception("event stream failed")
            if connected:
                self._emit(self.eventsConnected, False)
            if self._stop.is_set():
                return
            if received or time.monotonic() - opened > 5.0:
                delay = low
            self._wake.wait(delay)
            self._wake.clear()
            delay = min(delay * 2, high)

    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # bridge deleted while the daemon thread still ran
            self._stop.set()


class EventStream(QObject):
    """Follows `client.events(pid)` on a background thread until the process ends."""

    kernelEvent = Signal(object)
    finished = Signal()
    failed = Signal(str)

    def __init__(self, client: Any, pid: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client, self.pid = client, pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"deskpilot-proc-{pid}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 1.0) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:  # background thread
        try:
            for event in self._client.events(pid=self.pid):
                if self._stop.is_set() or not self._emit(self.kernelEvent, event):
                    return
        except Exception as exc:
            log.info("process %s event stream ended: %s", self.pid, exc)
            self._emit(self.failed, describe_error(exc))
            return
        self._emit(self.finished)

    def _emit(self, signal: Any, *args: Any) -> bool:
        try:
            signal.emit(*args)
            return True
        except RuntimeError:  # this object was deleted on the GUI side
            self._stop.set()
            return False
