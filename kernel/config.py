"""Kernel configuration: config.toml in the config dir, with environment overrides."""
from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-4-5"

DEFAULT_CONFIG = """\
# DeskPilot configuration. Changes apply when the kernel starts, except [budget],
# which `deskpilot budget set` changes at once.

[model]
# The model agents use unless their spec names one. DESKPILOT_MODEL overrides it.
default = "claude-sonnet-4-5"
# A cheaper model for background and idle agents whose spec names none (empty: the default).
background = ""
# Seconds one model call may take before it is retried.
timeout_seconds = 120

[approvals]
# How long an `ask` waits for a person before it counts as denied.
timeout_seconds = 300
# Show a desktop notification when an agent asks for permission.
notify = true
"""


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    model_timeout: float = 120.0
    background_model: str | None = None
    approval_timeout: float = 300.0
    notify: bool = True
    raw: dict[str, Any] = field(default_factory=dict)


def load(path: Path) -> Config:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_CONFIG, encoding="utf-8")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    model = raw.get("model", {})
    approvals = raw.get("approvals", {})
    cfg = Config(
        model=str(model.get("default", DEFAULT_MODEL)),
        model_timeout=float(model.get("timeout_seconds", 120)),
        background_model=str(model.get("background") or "") or None,
        approval_timeout=float(approvals.get("timeout_seconds", 300)),
        notify=bool(approvals.get("notify", True)),
        raw=raw,
    )
    if os.environ.get("DESKPILOT_MODEL"):
        cfg.model = os.environ["DESKPILOT_MODEL"]
    return cfg
