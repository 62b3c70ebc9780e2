"""kernel.keys against a real Secret Service (gnome-keyring on a private bus)."""
from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import keyring
import keyring.core
import pytest
from keyring.backends import SecretService as SecretServiceBackend

from kernel import keys

KEY = "sk-ant-api03-" + "x1Y2z3" * 12
OTHER = "sk-ant-api03-" + "q9R8s7" * 12

# Runs in a subprocess with the fixture's environment: keyring picks its backend
# from scratch there, so this proves the key really is in the Secret Service.
READ_IN_SUBPROCESS = (
    "import keyring; from keyring.backends import SecretService as S; "
    "assert isinstance(keyring.get_keyring(), S.Keyring), keyring.get_keyring(); "
    f"print(keyring.get_password({keys.SERVICE!r}, {keys.USERNAME!r}))"
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(keys.ENV_VAR, raising=False)
    previous = keyring.core._keyring_backend
    keys.reset_cache()
    yield
    keys.reset_cache()
    keyring.core._keyring_backend = previous


def _use_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", name)
    keyring.core.init_backend()


def _read_from_other_process(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", READ_IN_SUBPROCESS], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_environment_wins_over_keyring(secret_service, monkeypatch):
    keys.set_api_key(OTHER)
    monkeypatch.setenv(keys.ENV_VAR, KEY)
    assert keys.api_key() == KEY


def test_environment_key_needs_no_keyring(monkeypatch):
    _use_backend(monkeypatch, "keyring.backends.fail.Keyring")
    monkeypatch.setenv(keys.ENV_VAR, f"  {KEY}\n")
    assert keys.api_key() == KEY


def test_set_get_delete_through_secret_service(secret_service):
    assert keys.api_key() is None
    keys.set_api_key(f" {KEY} ")
    assert keys.api_key() == KEY
    assert _read_from_other_process(secret_service.env) == KEY

    keys.set_api_key(OTHER)  # replaces, doesn't add a second item
    assert keys.api_key() == OTHER
    assert _read_from_other_process(secret_service.env) == OTHER

    keys.delete_api_key()
    assert keys.api_key() is None
    assert _read_from_other_process(secret_service.env) == "None"
    keys.delete_api_key()  # nothing stored: no error


def test_empty_key_is_refused(secret_service):
    with pytest.raises(ValueError):
        keys.set_api_key("   ")


@pytest.mark.parametrize("backend", [
    "keyring.backends.fail.Keyring",
    "keyring.backends.null.Keyring",
])
def test_missing_backend_raises_helpful_error(monkeypatch, caplog, backend):
    _use_backend(monkeypatch, backend)
    with pytest.raises(keys.KeyringUnavailable) as info:
        keys.set_api_key(KEY)
    message = str(info.value)
    assert keys.ENV_VAR in message
    assert "PYTHON_KEYRING_BACKEND" in message
    if sys.platform.startswith("linux"):
        assert "gnome-keyring" in message and "KeePassXC" in message
    with pytest.raises(keys.KeyringUnavailable):
        keys.delete_api_key()

    caplog.set_level(logging.DEBUG, logger="kernel.keys")
    assert keys.api_key() is None  # doesn't raise
    assert any(r.levelno == logging.INFO and "keyring" in r.getMessage()
               for r in caplog.records)
    assert KEY not in caplog.text


def test_chainer_without_backends_is_unavailable(monkeypatch):
    monkeypatch.setattr("keyring.backends.chainer.ChainerBackend.backends", [],
                        raising=False)
    keyring.set_keyring(keyring.backends.chainer.ChainerBackend())
    with pytest.raises(keys.KeyringUnavailable, match="no keyring backend|can.t store secrets"):
        keys.set_api_key(KEY)


def test_no_session_bus(monkeypatch, tmp_path):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    keyring.set_keyring(SecretServiceBackend.Keyring())
    with pytest.raises(keys.KeyringUnavailable) as info:
        keys.set_api_key(KEY)
    assert keys.ENV_VAR in str(info.value)
    assert keys.api_key() is None


def test_secret_service_gone(secret_service):
    keys.set_api_key(KEY)
    for proc in secret_service._procs[1:]:  # gnome-keyring-daemon; the bus stays up
        proc.terminate()
        proc.wait(5)
    with pytest.raises(keys.KeyringUnavailable):
        keys.set_api_key(OTHER)
    assert keys.api_key() is None


def test_locked_keyring(secret_service, caplog):
    import secretstorage

    keys.set_api_key(KEY)
    conn = secretstorage.dbus_init()
    try:
        secretstorage.get_default_collection(conn).lock()
    finally:
        conn.close()
    with pytest.raises(keys.KeyringUnavailable) as info:
        keys.set_api_key(OTHER)
    assert info.value.locked
    assert "unlock" in str(info.value)
    caplog.set_level(logging.DEBUG, logger="kernel.keys")
    assert keys.api_key() is None
    assert KEY not in caplog.text


def test_redact_env_key(monkeypatch):
    _use_backend(monkeypatch, "keyring.backends.fail.Keyring")
    monkeypatch.setenv(keys.ENV_VAR, KEY)
    assert keys.redact(f"auth: {KEY}; again {KEY}") == "auth: [redacted]; again [redacted]"
    assert keys.redact("nothing secret") == "nothing secret"


def test_redact_keyring_key_is_cached(secret_service, monkeypatch):
    keys.set_api_key(KEY)
    keys.reset_cache()
    assert keys.redact(f"x-api-key: {KEY}") == "x-api-key: [redacted]"

    calls = []
    backend = keyring.get_keyring()
    original = backend.get_password
    monkeypatch.setattr(backend, "get_password",
                        lambda *a: calls.append(a) or original(*a))
    for _ in range(3):
        assert keys.redact(KEY) == "[redacted]"
    assert calls == []  # the keyring is asked once, not per line


def test_redact_without_any_key(monkeypatch):
    _use_backend(monkeypatch, "keyring.backends.fail.Keyring")
    assert keys.redact("plain text") == "plain text"


def test_key_is_never_logged(secret_service, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    keys.set_api_key(KEY)
    keys.api_key()
    keys.redact(KEY)
    keys.delete_api_key()
    keys.delete_api_key()
    monkeypatch.setenv(keys.ENV_VAR, OTHER)
    keys.api_key()
    assert caplog.records  # it did log something
    assert KEY not in caplog.text and OTHER not in caplog.text
