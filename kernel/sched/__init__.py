"""The inference scheduler: every model call of every agent against one budget.

Pure asyncio and stdlib (+ pydantic for the budget); no HTTP, no provider SDK.
The kernel builds one :class:`Scheduler` and calls ``admit`` before, and
``settle`` / ``abandon`` after, every model call.
"""
from kernel.sched.budget import (
    POLICIES, SETTING_KEYS, Budget, BudgetError, ModelPrice, PriceTable, Usage, apply_setting,
)
from kernel.sched.clock import Clock, SystemClock, VirtualClock, VirtualDeadlock, run_virtual
from kernel.sched.scheduler import Scheduler
from kernel.sched.tickets import PRIORITIES, RequestTooLarge, Reservation, Ticket

__all__ = [
    "POLICIES", "PRIORITIES", "SETTING_KEYS", "Budget", "BudgetError", "Clock", "ModelPrice",
    "PriceTable", "RequestTooLarge", "Reservation", "Scheduler", "SystemClock", "Ticket",
    "Usage", "VirtualClock", "VirtualDeadlock", "apply_setting", "run_virtual",
]
