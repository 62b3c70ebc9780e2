"""The kernel as a process: run in the foreground, start in the background, stop, status.

One kernel per DESKPILOT_HOME: the running kernel holds an exclusive `flock` on
run/kernel.lock for its whole life. So a second start sees the lock and does nothing, and
a socket left by a crashed kernel (lock free, file present) is stale and removed.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from kernel import config as config_mod
from kernel.client import KernelClient, KernelUnavailable
from kernel.paths import Locations, locations

log = logging.getLogger(__name__)


class AlreadyRunning(Exception):
    pass


def _take_lock(where: Locations) -> IO[str]:
    handle = open(where.lock, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(f"a kernel is already running for {where.runtime}") from None
    return handle


def lock_is_held(where: Locations) -> bool:
    if not where.lock.exists():
        return False
    try:
        handle = _take_lock(where)
    except AlreadyRunning:
        return True
    handle.close()
    return False


def setup_logging(where: Locations, foreground: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(where.logs / "kernel.log",
                                                        maxBytes=5_000_000, backupCount=3)
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    if foreground:
        stream = logging.StreamHandler()
        stream.setFormatter(fmt)
        root.addHandler(stream)
    # The SDK and HTTP layers may log request headers at debug level: never let them.
    for noisy in ("anthropic", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_foreground(where: Locations | None = None) -> int:
    """Run the kernel in this process until stopped (SIGTERM, SIGINT or the API)."""
    import uvicorn


    where = (where or locations()).ensure()
    os.umask(0o077)  # the socket and every file we create: this user only
    lock = _take_lock(where)
    try:
        if where.socket.exists() or where.socket.is_symlink():
            log.info("removing stale socket %s", where.socket)
            where.socket.unlink()
        where.pidfile.write_text(str(os.getpid()))
        cfg = config_mod.load(where.config_file)
        return asyncio.run(_serve(where, cfg, uvicorn))
    finally:
        for path in (where.socket, where.pidfile):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        lock.close()


async def _serve(where: Locations, cfg: config_mod.Config, uvicorn: Any) -> int:
    from kernel.core import Kernel
    from kernel.server import create_app

    kernel = Kernel(where, cfg)
    restored = kernel.restore()
    if restored:
        log.info("restored %d process(es) from checkpoints", len(restored))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(kernel, stop)
    server = uvicorn.Server(uvicorn.Config(app, uds=str(where.socket), log_level="warning",
                                           lifespan="off"))
    server.install_signal_handlers = lambda: None  # ours above, so shutdown is orderly
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            return 1
        await asyncio.sleep(0.02)
    os.chmod(where.socket, 0o600)
    log.info("kernel %d listening on %s", os.getpid(), where.socket)
    await stop.wait()
    log.info("kernel stopping")
    await kernel.shutdown()
    server.should_exit = True
    await serving
    return 0


def start_background(where: Locations | None = None, timeout: float = 20.0) -> dict[str, Any]:
    """Start the kernel as its own process and return once it answers."""
    where = (where or locations()).ensure()
    with KernelClient(where) as client:
        try:
            return client.status()
        except KernelUnavailable:
            pass
    deadline = time.monotonic() + timeout
    while lock_is_held(where):
        # Another kernel is starting, or stopping: wait until it answers or lets go.
        with KernelClient(where, timeout=5) as client:
            try:
                return client.status()
            except KernelUnavailable:
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"a kernel holds {where.lock} but does not answer; "
                               f"see {where.logs / 'kernel.log'}")
        time.sleep(0.05)
    log_path = where.logs / "kernel.out"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kernel", "--foreground"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, cwd=str(Path.home()))
    return _wait_for(where, max(1.0, deadline - time.monotonic()), proc)


def _wait_for(where: Locations, timeout: float, proc: subprocess.Popen[bytes] | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with KernelClient(where, timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                return client.status()
            except KernelUnavailable:
                pass
            if proc is not None and proc.poll() is not None:
                if lock_is_held(where):
                    proc = None  # lost a start race to another kernel; wait for that one
                    continue
                tail = _tail(where.logs / "kernel.out")
                raise RuntimeError(f"the kernel exited with status {proc.returncode}:\n{tail}")
            time.sleep(0.05)
    raise TimeoutError(f"the kernel did not answer within {timeout:.0f} s; "
                       f"see {where.logs / 'kernel.log'}")


def ensure_running(where: Locations | None = None, timeout: float = 20.0) -> dict[str, Any]:
    return start_background(where, timeout)


def stop(where: Locations | None = None, timeout: float = 15.0) -> bool:
    """Ask the kernel to stop and wait until it has released its lock. False: none ran."""
    where = where or locations()
    with KernelClient(where) as client:
        try:
            client.shutdown()
        except KernelUnavailable:
            if not lock_is_held(where):
                return False
            _signal_pidfile(where)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock_is_held(where):
            return True
        time.sleep(0.05)
    _signal_pidfile(where, signal.SIGKILL)
    return True


def _signal_pidfile(where: Locations, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(int(where.pidfile.read_text().strip()), sig)
    except (OSError, ValueError):
        pass


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
