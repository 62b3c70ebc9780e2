"""The Anthropic API key: from the environment, else from the system keyring.

``ANTHROPIC_API_KEY`` in the environment wins; otherwise the key lives in the
system keyring (Secret Service on Linux, the Keychain on macOS, Credential
Manager on Windows) under service ``deskpilot``, user ``anthropic-api-key``.

A keyring that can't be used (no backend, no Secret Service running, a locked
collection...) is reported as `KeyringUnavailable`, whose message tells the user
what to do on their platform. `api_key()` never raises for that: it returns None
and logs why.

This module never logs or writes the key. `redact()` blanks it out of text (the
audit log runs everything through it).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable, TypeVar

import keyring
import keyring.backend
import keyring.core
import keyring.errors

log = logging.getLogger(__name__)

SERVICE = "deskpilot"
USERNAME = "anthropic-api-key"
ENV_VAR = "ANTHROPIC_API_KEY"
REDACTED = "[redacted]"

T = TypeVar("T")

# Errors that mean "the keyring can't be used", as opposed to bugs of ours.
_BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    keyring.errors.KeyringError, RuntimeError, OSError)
_LOCKED_ERRORS: tuple[type[BaseException], ...] = (keyring.errors.KeyringLocked,)
try:  # Linux only: the Secret Service client libraries keyring uses there.
    import secretstorage.exceptions as _ss

    _BACKEND_ERRORS += (_ss.SecretStorageException,)
    _LOCKED_ERRORS += (_ss.LockedException, _ss.PromptDismissedException)
except ImportError:  # pragma: no cover - not on Linux
    pass
try:
    from jeepney.wrappers import DBusErrorResponse

    _BACKEND_ERRORS += (DBusErrorResponse,)
except ImportError:  # pragma: no cover - not on Linux
    pass


class KeyringUnavailable(Exception):
    """The system keyring can't be used; the message says how to fix that."""

    def __init__(self, reason: str, *, locked: bool = False) -> None:
        self.reason = reason
        self.locked = locked
        super().__init__(_advice(reason, locked))


_lock = threading.Lock()
_known: set[str] = set()       # keys seen by this process, for redact()
_looked_up = False             # has redact() (or api_key()) asked the keyring yet?


def api_key() -> str | None:
    """The API key: the environment's, else the keyring's, else None. Never raises
    for an unusable keyring (it logs why instead)."""
    global _looked_up
    key = _env_key()
    if key:
        _remember(key)
        return key
    try:
        key = _call("read", lambda kr: kr.get_password(SERVICE, USERNAME))
    except KeyringUnavailable as e:
        log.info("No Anthropic API key: %s is not set and the keyring can't be used (%s)",
                 ENV_VAR, e.reason)
        key = None
    else:
        if not key:
            log.debug("No Anthropic API key: %s is not set and none is stored in the "
                      "keyring", ENV_VAR)
    with _lock:
        _looked_up = True
    if key:
        _remember(key)
    return key or None


def set_api_key(key: str) -> None:
    """Store the key in the system keyring. Raises KeyringUnavailable."""
    key = key.strip()
    if not key:
        raise ValueError("the API key is empty")
    _call("store", lambda kr: kr.set_password(SERVICE, USERNAME, key))
    _remember(key)
    log.info("Anthropic API key stored in the system keyring")


def delete_api_key() -> None:
    """Remove the key from the system keyring (no-op if none is stored).
    Raises KeyringUnavailable."""
    def delete(kr: keyring.backend.KeyringBackend) -> None:
        try:
            kr.delete_password(SERVICE, USERNAME)
        except keyring.errors.PasswordDeleteError:
            log.debug("No Anthropic API key was stored in the keyring")
        else:
            log.info("Anthropic API key removed from the system keyring")

    _call("remove", delete)
    # Known keys stay in the redaction set: they may still be in text to redact.


def redact(text: str) -> str:
    """`text` with every occurrence of the current API key (and any key this process
    has seen) replaced by ``[redacted]``."""
    if not _env_key():
        with _lock:
            need = not _looked_up
        if need:
            api_key()  # cached afterwards; never raises
    with _lock:
        keys = set(_known)
    env = _env_key()
    if env:
        keys.add(env)
    for k in sorted(keys, key=len, reverse=True):
        text = text.replace(k, REDACTED)
    return text


def reset_cache() -> None:
    """Forget the keys seen so far (tests; after the keyring changed behind our back)."""
    global _looked_up
    with _lock:
        _known.clear()
        _looked_up = False


# -- internals ---------------------------------------------------------------

def _env_key() -> str | None:
    return os.environ.get(ENV_VAR, "").strip() or None


def _remember(key: str) -> None:
    with _lock:
        _known.add(key)


def _call(action: str, op: Callable[[keyring.backend.KeyringBackend], T]) -> T:
    kr = _backend()
    try:
        return op(kr)
    except _LOCKED_ERRORS as e:
        raise KeyringUnavailable(
            f"the keyring is locked and could not be unlocked to {action} the key "
            f"({_describe(e)})", locked=True) from e
    except _BACKEND_ERRORS as e:
        raise KeyringUnavailable(
            f"{_name(kr)} failed to {action} the key ({_describe(e)})") from e


def _backend() -> keyring.backend.KeyringBackend:
    try:
        kr = keyring.get_keyring()
    except Exception as e:  # a bad PYTHON_KEYRING_BACKEND / keyringrc.cfg ends here
        raise KeyringUnavailable(f"the keyring backend could not be loaded ({_describe(e)})") \
            from e
    from keyring.backends import chainer, fail, null

    if isinstance(kr, fail.Keyring | null.Keyring) or (
            isinstance(kr, chainer.ChainerBackend) and not kr.backends):
        chosen = _chosen_by()
        if chosen:
            raise KeyringUnavailable(f"{chosen} selects {_name(kr)}, which can't store "
                                     f"secrets")
        raise KeyringUnavailable(_why_no_backend())
    return kr


def _chosen_by() -> str | None:
    """What picked the keyring backend explicitly, if anything did."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return "PYTHON_KEYRING_BACKEND"
    try:
        path = keyring.core._config_path()  # keyringrc.cfg; `keyring --disable` writes it
        if path.exists():
            return f"the keyring configuration file {path}"
    except Exception:  # private API; only used to word the message
        pass
    return None


def _why_no_backend() -> str:
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS") \
            and not os.path.exists(f"/run/user/{os.getuid()}/bus"):
        return ("no keyring backend is available: there is no D-Bus session bus "
                "(DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service can be reached")
    if sys.platform.startswith("linux"):
        return ("no keyring backend is available: no Secret Service is running on the "
                "D-Bus session bus")
    return "no keyring backend is available"


def _name(kr: keyring.backend.KeyringBackend) -> str:
    return f"the keyring backend {type(kr).__module__}.{type(kr).__qualname__}"


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _advice(reason: str, locked: bool) -> str:
    lines = [f"DeskPilot can't use the system keyring for the Anthropic API key: {reason}."]
    configured = os.environ.get("PYTHON_KEYRING_BACKEND")
    if configured:
        lines.append(f"Note: PYTHON_KEYRING_BACKEND={configured} is set in the environment; "
                     "unset it to let DeskPilot use the system keyring.")
    lines.append("To fix this, either:")
    if sys.platform.startswith("linux"):
        if locked:
            lines.append("  - unlock your keyring: open \"Passwords and Keys\" (Seahorse) and "
                         "unlock the Login keyring, or open your KeePassXC database;")
        lines.append(
            "  - run a Secret Service provider: install gnome-keyring (e.g. `sudo apt install "
            "gnome-keyring`) and log in to a desktop session that starts and unlocks it, or "
            "enable KeePassXC's Secret Service integration (Settings > Secret Service "
            "Integration) and keep its database open; without a desktop session, start one "
            "with `dbus-run-session` and `gnome-keyring-daemon --unlock --components=secrets`;")
        lines.append(
            f"  - or set {ENV_VAR} in the environment the DeskPilot kernel starts from "
            f"(your shell profile, or ~/.config/environment.d/deskpilot.conf for the systemd "
            f"user service), then restart the kernel.")
    elif sys.platform == "darwin":
        lines.append(
            "  - unlock the login keychain (Keychain Access > select \"login\" > File > "
            "Unlock Keychain) and allow DeskPilot's access when macOS asks;")
        lines.append(
            f"  - or set {ENV_VAR} in the environment the DeskPilot kernel starts from "
            f"(your shell profile, or the EnvironmentVariables of its launchd agent plist), "
            f"then restart the kernel.")
    elif sys.platform == "win32":
        lines.append(
            "  - run DeskPilot as your normal, interactively logged-in user (Windows "
            "Credential Manager isn't available to some service accounts);")
        lines.append(
            f"  - or set {ENV_VAR} as a user environment variable (Settings > System > "
            f"About > Advanced system settings > Environment Variables), then restart "
            f"DeskPilot.")
    else:
        lines.append("  - install and unlock a keyring supported by the Python `keyring` "
                     "package;")
        lines.append(f"  - or set {ENV_VAR} in the environment the DeskPilot kernel "
                     f"starts from, then restart the kernel.")
    return "\n".join(lines)
