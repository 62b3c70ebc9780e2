"""Desktop notifications from the kernel (approval requests when nobody is watching)."""
from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)


def desktop_notify(title: str, body: str) -> None:
    """Best effort: `notify-send` where it exists; never blocks, never raises."""
    exe = shutil.which("notify-send")
    if exe is None:
        log.info("notification (no notify-send): %s: %s", title, body)
        return
    try:
        subprocess.Popen([exe, "--app-name=DeskPilot", title, body],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:
        log.info("notification failed: %s: %s", title, body)
