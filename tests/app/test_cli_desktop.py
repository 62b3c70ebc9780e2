"""End to end with desktop services: the key from a real Secret Service, and the
interactive approval prompt in a real terminal (a pty)."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

from tests.fakes.replies import text, tool_use
from tests.fixtures.desktop import SecretService
from tests.fixtures.kernel import DESKPILOT, TEST_KEY, KernelEnv


def test_the_key_comes_from_the_keyring_and_never_reaches_a_file(
        secret_service: SecretService, kernel_env: KernelEnv) -> None:
    env = {k: v for k, v in kernel_env.env.items() if k != "ANTHROPIC_API_KEY"}
    env["DBUS_SESSION_BUS_ADDRESS"] = secret_service.env["DBUS_SESSION_BUS_ADDRESS"]
    kernel_env.env = env
    kernel_env.run("auth", "set-key", "--stdin", input=TEST_KEY + "\n")
    assert kernel_env.json("auth", "status") == {"key_source": "keyring"}
    kernel_env.server.script(text("Hello from the keyring."))

    res = kernel_env.run("ask", "hi")

    assert res.stdout.strip() == "Hello from the keyring."
    assert kernel_env.server.requests[0].api_key == TEST_KEY
    kernel_env.run("kernel", "stop")
    hits = subprocess.run(["grep", "-r", "-l", TEST_KEY, str(kernel_env.home)],
                          capture_output=True, text=True)
    assert hits.stdout == ""


def test_without_a_keyring_the_person_is_told_what_to_do(kernel_env: KernelEnv) -> None:
    env = {k: v for k, v in kernel_env.env.items() if k != "ANTHROPIC_API_KEY"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    kernel_env.env = env
    res = kernel_env.run("auth", "set-key", "--stdin", input="sk-ant-x\n", check=False)
    assert res.returncode == 1
    assert "ANTHROPIC_API_KEY" in res.stderr and "Traceback" not in res.stderr


def _read_until(fd: int, needle: str, timeout: float = 30) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {needle!r}; got:\n{seen}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_ask_in_a_terminal_prompts_for_approval(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "from-terminal.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "tty"}),
                             text("Written after you said yes."))
    kernel_env.run("kernel", "start")
    master, slave = pty.openpty()
    proc = subprocess.Popen([DESKPILOT, "ask", "write it"], env=kernel_env.env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        shown = _read_until(master, "allow? [y/N]")
        assert f"fs.write:{target}" in shown
        os.write(master, b"y\n")
        shown += _read_until(master, "Written after you said yes.")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert target.read_text() == "tty"
