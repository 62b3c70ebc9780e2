"""An in-process kernel for unit tests of the gate (no daemon, no socket)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from kernel.config import Config
from kernel.core import Kernel
from kernel.paths import Locations
from kernel.proc import Process, State

T = TypeVar("T")


def make_kernel(tmp_path: Path, **config: Any) -> Kernel:
    """A kernel on tmp_path; the test sets ANTHROPIC_* with monkeypatch if it calls models."""
    root = tmp_path / "dp"
    where = Locations(root / "config", root / "data", root / "run", root / "logs")
    cfg = Config(model="claude-test", notify=False, **config)
    return Kernel(where, cfg)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def bare_process(kernel: Kernel, agent: str = "assistant") -> Process:
    """A process in the table with no loop attached: the test makes its syscalls."""
    proc = kernel.procs.create(agent, None)
    kernel.procs.transition(proc, State.READY)
    kernel.procs.transition(proc, State.RUNNING)
    return proc
