"""The grant table: allow / ask / deny rules per agent, read at every check.

Invariant: a check reads the table at the moment of use, so a revoke or a change of
mode takes effect at the agent's very next syscall.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kernel.capabilities import Capability, Mode, decide, parse
from kernel.db import Database


class GrantStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def rules(self, agent: str) -> list[tuple[Capability, Mode]]:
        rows = self._db.query("SELECT capability, mode FROM grants WHERE agent=?", (agent,))
        return [(parse(r["capability"]), Mode(r["mode"])) for r in rows]

    def listing(self, agent: str | None = None) -> list[dict[str, Any]]:
        if agent:
            return self._db.query("SELECT agent, capability, mode, source, updated FROM grants"
                                  " WHERE agent=? ORDER BY capability", (agent,))
        return self._db.query("SELECT agent, capability, mode, source, updated FROM grants"
                              " ORDER BY agent, capability")

    def set(self, agent: str, capability: str, mode: Mode | str, source: str = "user") -> dict[str, Any]:
        cap = str(parse(capability))
        mode = Mode(mode)
        self._db.execute(
            "INSERT INTO grants (agent, capability, mode, source, updated) VALUES (?,?,?,?,?)"
            " ON CONFLICT(agent, capability) DO UPDATE SET mode=excluded.mode,"
            " source=excluded.source, updated=excluded.updated",
            (agent, cap, mode.value, source, time.time()))
        return {"agent": agent, "capability": cap, "mode": mode.value}

    def revoke(self, agent: str, capability: str) -> bool:
        cap = str(parse(capability))
        cur = self._db.execute("DELETE FROM grants WHERE agent=? AND capability=?", (agent, cap))
        return cur.rowcount > 0

    def seed(self, agent: str, grants: list[tuple[str, Mode]]) -> None:
        """Install a spec's grants once; later user changes (revokes included) stick."""
        with self._db.transaction() as conn:
            for capability, mode in grants:
                cap = str(parse(capability))
                cur = conn.execute("INSERT OR IGNORE INTO seeded_grants VALUES (?, ?)", (agent, cap))
                if cur.rowcount:
                    conn.execute("INSERT OR IGNORE INTO grants (agent, capability, mode, source,"
                                 " updated) VALUES (?,?,?,?,?)",
                                 (agent, cap, Mode(mode).value, "spec", time.time()))

    def check(self, agent: str, name: str, scope: str | None, scope_is_path: bool,
              default: Mode, home: Path | None = None) -> tuple[Mode, str | None]:
        return decide(self.rules(agent), name, scope, scope_is_path, default, home)
