"""Where DeskPilot keeps things. `DESKPILOT_HOME` puts everything under one folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "deskpilot"


@dataclass(frozen=True)
class Locations:
    config: Path
    data: Path
    runtime: Path
    logs: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "kernel.sock"

    @property
    def lock(self) -> Path:
        return self.runtime / "kernel.lock"

    @property
    def pidfile(self) -> Path:
        return self.runtime / "kernel.pid"

    @property
    def database(self) -> Path:
        return self.data / "kernel.sqlite3"

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"

    @property
    def agents_dir(self) -> Path:
        return self.config / "agents"

    @property
    def checkpoints(self) -> Path:
        return self.data / "checkpoints"

    def ensure(self) -> "Locations":
        for d in (self.config, self.data, self.runtime, self.logs, self.agents_dir,
                  self.checkpoints):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self


def locations() -> Locations:
    home = os.environ.get("DESKPILOT_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        return Locations(root / "config", root / "data", root / "run", root / "logs")
    runtime = platformdirs.user_runtime_dir(APP)
    return Locations(Path(platformdirs.user_config_dir(APP)), Path(platformdirs.user_data_dir(APP)),
                     Path(runtime), Path(platformdirs.user_log_dir(APP)))
