"""Qt table models of kernel data: processes, grants, approvals.

Models hold plain dicts as the kernel returns them and never call the client; the
bridge (or a window, through the bridge) feeds them. Updates are applied row by row
so that a poll does not reset the views' selection.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.qt import QAbstractTableModel, QColor, QModelIndex, QObject, QPersistentModelIndex, Qt

log = logging.getLogger(__name__)

Record = dict[str, Any]
AnyIndex = QModelIndex | QPersistentModelIndex

#: role under which every cell answers its row's whole record
RecordRole = Qt.ItemDataRole.UserRole + 1

_STATE_COLOURS = {
    "running": "#1e7d32", "ready": "#1e7d32", "waiting": "#b26a00", "suspended": "#6d4c9f",
    "terminated": "#757575", "created": "#455a64",
}
_LIVE = ("created", "ready", "running", "waiting")
_MODE_COLOURS = {"allow": "#1e7d32", "ask": "#b26a00", "deny": "#c62828"}


@dataclass(frozen=True)
class Column:
    key: str
    title: str


class RecordTableModel(QAbstractTableModel):
    """A table of records keyed by one field, updated in place."""

    columns: tuple[Column, ...] = ()
    key_field = "id"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Record] = []

    # -- Qt API -----------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(self.columns)):
            return self.columns[section].title
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        key = self.columns[index.column()].key
        if role == RecordRole:
            return record
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.display(record, key)
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = self.colour(record, key)
            return QColor(colour) if colour else None
        return None

    # -- hooks ------------------------------------------------------------------------
    def display(self, record: Record, key: str) -> str:
        value = record.get(key)
        return "" if value is None else str(value)

    def colour(self, record: Record, key: str) -> str | None:
        return None

    # -- records ----------------------------------------------------------------------
    def key_of(self, record: Record) -> Any:
        return record.get(self.key_field)

    def records(self) -> list[Record]:
        return [dict(r) for r in self._rows]

    def record(self, row: int) -> Record | None:
        return dict(self._rows[row]) if 0 <= row < len(self._rows) else None

    def row_of(self, key: Any) -> int:
        for i, record in enumerate(self._rows):
            if self.key_of(record) == key:
                return i
        return -1

    def set_rows(self, rows: Iterable[Record]) -> None:
        """Make the model hold exactly `rows`: drop the missing, update the changed,
        append the new (existing rows keep their place, so selections survive)."""
        incoming: dict[Any, Record] = {}
        for record in rows:
            if isinstance(record, dict) and self.key_of(record) is not None:
                incoming[self.key_of(record)] = dict(record)
        for i in range(len(self._rows) - 1, -1, -1):
            if self.key_of(self._rows[i]) not in incoming:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for key, record in incoming.items():
            self._put(key, record, merge=False)

    def upsert(self, record: Record) -> None:
        """Merge `record` into the row with its key, or append it."""
        key = self.key_of(record)
        if key is not None:
            self._put(key, dict(record), merge=True)

    def remove(self, key: Any) -> bool:
        row = self.row_of(key)
        if row < 0:
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()
        return True

    def clear(self) -> None:
        if self._rows:
            self.beginResetModel()
            self._rows.clear()
            self.endResetModel()

    def _put(self, key: Any, record: Record, *, merge: bool) -> None:
        row = self.row_of(key)
        if row < 0:
            end = len(self._rows)
            self.beginInsertRows(QModelIndex(), end, end)
            self._rows.append(record)
            self.endInsertRows()
            return
        new = {**self._rows[row], **record} if merge else record
        if new != self._rows[row]:
            self._rows[row] = new
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))


class ProcessModel(RecordTableModel):
    """Agent processes: pid, agent, state, reason."""

    columns = (Column("pid", "PID"), Column("agent", "Agent"), Column("state", "State"),
               Column("reason", "Reason"))
    key_field = "pid"

    def display(self, record: Record, key: str) -> str:
        if key == "reason" and not record.get("reason") and record.get("exit_status"):
            return str(record["exit_status"])  # why a terminated process ended
        return super().display(record, key)

    def colour(self, record: Record, key: str) -> str | None:
        return _STATE_COLOURS.get(str(record.get("state"))) if key == "state" else None

    def running_count(self) -> int:
        """Processes that are alive and not suspended."""
        return sum(1 for r in self._rows if r.get("state") in _LIVE)

    def suspended_count(self) -> int:
        return sum(1 for r in self._rows if r.get("state") == "suspended")

    def budget_waits(self) -> list[str]:
        """Why each process waiting for the budget waits (the kernel's words)."""
        return [str(r["reason"]) for r in self._rows
                if r.get("state") == "waiting" and str(r.get("reason") or "").startswith("budget")]

    def spend_cap(self) -> str | None:
        """The spend cap agents wait for (``usd_per_day`` / ``usd_per_month``), or None."""
        for reason in self.budget_waits():
            if "spend cap" in reason:
                return "usd_per_month" if "usd_per_month" in reason else "usd_per_day"
        return None

    def apply_event(self, event: Record) -> None:
        if event.get("type") != "proc.state" or event.get("pid") is None:
            return
        update: Record = {k: event[k] for k in ("pid", "agent", "state", "reason") if k in event}
        self.upsert(update)


class GrantModel(RecordTableModel):
    """One agent's capability rules: capability, mode."""

    columns = (Column("capability", "Capability"), Column("mode", "Mode"))
    key_field = "capability"

    def colour(self, record: Record, key: str) -> str | None:
        return _MODE_COLOURS.get(str(record.get("mode"))) if key == "mode" else None


class ApprovalModel(RecordTableModel):
    """Pending approval requests: id, agent, capability, detail."""

    columns = (Column("id", "#"), Column("agent", "Agent"), Column("capability", "Capability"),
               Column("detail", "Detail"))
    key_field = "id"

    def display(self, record: Record, key: str) -> str:
        value = record.get(key)
        if key == "detail" and isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items())
        return super().display(record, key)

    def apply_event(self, event: Record) -> None:
        kind = event.get("type")
        if kind == "approval.requested" and event.get("id") is not None:
            self.upsert({k: v for k, v in event.items() if k != "type"} | {"status": "pending"})
        elif kind == "approval.resolved" and event.get("id") is not None:
            self.remove(event["id"])

    def set_pending(self, rows: Iterable[Record]) -> None:
        self.set_rows(r for r in rows if r.get("status", "pending") == "pending")


#: Budget settings the window offers, in the order shown, with a label for the person.
BUDGET_SETTINGS: tuple[tuple[str, str], ...] = (
    ("input_tokens_per_minute", "Input tokens per minute"),
    ("output_tokens_per_minute", "Output tokens per minute"),
    ("requests_per_minute", "Requests per minute"),
    ("max_concurrent", "Concurrent calls"),
    ("usd_per_day", "Money per day (USD)"),
    ("usd_per_month", "Money per month (USD)"),
    ("policy", "Policy within a class"),
)


def _limit_text(value: Any) -> str:
    return "unlimited" if value is None else str(value)


class BudgetModel(RecordTableModel):
    """The budget's settings with what is in use now (``budget show``): one row a key."""

    columns = (Column("label", "Setting"), Column("limit", "Limit"), Column("used", "In use"))
    key_field = "key"

    def set_report(self, report: Record) -> None:
        limits = report.get("limits") or {}
        spend = report.get("spend") or {}
        rows: list[Record] = []
        for key, label in BUDGET_SETTINGS:
            if key in limits:
                row = limits[key]
                rows.append({"key": key, "label": label, "limit": _limit_text(row.get("limit")),
                             "used": f"{row.get('used', 0)} this minute"})
            elif key in ("usd_per_day", "usd_per_month"):
                period, spent = (("today", spend.get("usd_today", 0.0)) if key == "usd_per_day"
                                 else ("this month", spend.get("usd_this_month", 0.0)))
                rows.append({"key": key, "label": label, "limit": _limit_text(spend.get(key)),
                             "used": f"${spent:.4f} {period}"})
            elif key == "policy":
                rows.append({"key": key, "label": label, "limit": report.get("policy", ""),
                             "used": ""})
        self.set_rows(rows)

    def colour(self, record: Record, key: str) -> str | None:
        return "#757575" if key == "limit" and record.get("limit") == "unlimited" else None


class SpendModel(RecordTableModel):
    """Use and cost per agent: tokens and cached tokens today, money today and this month."""

    columns = (Column("agent", "Agent"), Column("tokens_today", "Tokens today"),
               Column("cached_today", "Cached today"), Column("usd_today", "USD today"),
               Column("usd_month", "USD this month"))
    key_field = "agent"

    def set_report(self, report: Record) -> None:
        rows = []
        for agent, d in sorted((report.get("agents") or {}).items()):
            today, month = d.get("today") or {}, d.get("month") or {}
            rows.append({"agent": agent,
                         # as the budget counts them, and as `budget show` does
                         "tokens_today": today.get("counted_input_tokens", 0)
                         + today.get("output_tokens", 0),
                         "cached_today": today.get("cache_read_input_tokens", 0),
                         "usd_today": f"{today.get('usd', 0.0):.4f}",
                         "usd_month": f"{month.get('usd', 0.0):.4f}"})
        self.set_rows(rows)


class PriceModel(RecordTableModel):
    """US dollars per million tokens, per model (``*``: every model without a price)."""

    columns = (Column("model", "Model"), Column("input", "Input"), Column("output", "Output"),
               Column("cache_write", "Cache write"), Column("cache_read", "Cache read"))
    key_field = "model"

    def set_report(self, report: Record) -> None:
        prices = report.get("prices") or {}
        self.set_rows({"model": m, **{k: f"{float(v):g}" for k, v in p.items()}}
                      for m, p in sorted(prices.items(), key=lambda kv: (kv[0] == "*", kv[0])))
