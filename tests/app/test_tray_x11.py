"""The tray icon under a real X server with a real tray host (Xvfb + trayer).

The tray runs in a subprocess on the xcb platform (this test process is offscreen),
reports what Qt sees as a JSON line (tests/app/tray_probe.py), and stays up while the
test checks from outside, with xwininfo, that trayer really embedded the icon.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP = 30.0


def _read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the tray probe printed nothing within {timeout}s:\n{err}", pytrace=False)
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the tray probe exited with {proc.returncode}:\n{err}", pytrace=False)
    return json.loads(line)


def _descendants_of(tree: str, title: str) -> list[str]:
    """Lines of `xwininfo -root -tree` below the window whose line contains `title`."""
    lines = tree.splitlines()
    for i, line in enumerate(lines):
        if title in line:
            indent = len(line) - len(line.lstrip())
            below = []
            for other in lines[i + 1:]:
                if other.strip() and len(other) - len(other.lstrip()) <= indent:
                    break
                below.append(other)
            return below
    return []


def test_tray_icon_is_shown_in_a_real_tray(tray_host: str) -> None:
    if shutil.which("xwininfo") is None:
        pytest.fail("xwininfo is missing: install the Debian package x11-utils", pytrace=False)
    env = dict(os.environ, DISPLAY=tray_host, QT_QPA_PLATFORM="xcb")
    for key in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORMTHEME"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.app.tray_probe"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        report = _read_json_line(proc, STARTUP)
        tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True,
                              text=True, timeout=10, check=True).stdout
    finally:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()

    # what Qt says
    assert report["available"] is True, report
    assert report["use_tray"] is True and report["visible"] is True, report
    x, y, w, h = report["geometry"]
    assert w > 0 and h > 0, f"the icon was never embedded: {report}"
    # trayer sits at the top right edge (see tests/fixtures/desktop.py)
    assert y < 24 and x > report["screen"][0] // 2, report
    assert report["tooltip"].startswith("DeskPilot\nKernel running"), report
    assert "Agents running: 2" in report["tooltip"], report
    assert report["menu"][1:] == ["Ask…", "Agents…", "Permissions…", "Budget…",
                                  "Approvals (0)…", "Stop kernel", "Quit"], report
    # what is on the screen there: the icon's blue, and the green "running" dot
    assert report["icon_pixels"] > report["area"] // 4, report
    assert report["dot_pixels"] > 0, report

    # what the X server says: our window is a child of trayer's panel
    panel = _descendants_of(tree, '("panel" "trayer")')
    ours = [line for line in panel if "deskpilot-tray-probe" in line]
    assert ours, f"no DeskPilot window inside trayer's panel:\n{tree}"
    assert re.search(rf"\b{w}x{h}\+", ours[0]), ours[0]
    assert proc.returncode == 0, err


def test_without_a_tray_host_qt_reports_no_tray(x_display: str) -> None:
    """The same probe on a bare X server: no tray, so the app falls back to a window."""
    env = dict(os.environ, DISPLAY=x_display, QT_QPA_PLATFORM="xcb")
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.app.tray_probe"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        report = _read_json_line(proc, STARTUP)
    finally:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
        proc.communicate(timeout=15)
    assert report == {"available": False, "use_tray": False, "tries": report["tries"]}
