"""The kernel object: owns the stores, the process table and the running agents.

It runs in one asyncio loop in the kernel process. Agents are tasks; everything they do
goes through `syscall` (the gate in kernel.syscalls).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from kernel import keys, syscalls
from kernel.approvals import Approvals
from kernel.audit import AuditLog
from kernel.config import Config
from kernel.db import Database
from kernel.drivers import DriverRegistry, discover_drivers
from kernel.events import EventBus
from kernel.grants import GrantStore
from kernel.inference import Inference
from kernel.loop import interrupted_result, run_agent
from kernel.notify import desktop_notify
from kernel.paths import Locations
from kernel.quotas import ToolCallQuota
from kernel.proc import Process, ProcessTable, State, WaitReason
from kernel.specs import SpecError, SpecRegistry

log = logging.getLogger(__name__)


class Kernel:
    def __init__(self, where: Locations, config: Config) -> None:
        self.where = where.ensure()
        self.config = config
        self.db = Database(where.database)
        self.bus = EventBus(self.db, keys.redact)
        self.procs = ProcessTable(self.db, on_change=self._state_changed)
        self.grants = GrantStore(self.db)
        self.audit = AuditLog(self.db, keys.redact)
        self.specs = SpecRegistry(where.agents_dir)
        for spec in self.specs.all():
            self.grants.seed(spec.name, [(g.capability, g.mode) for g in spec.grants])
        self.approvals = Approvals(self.db, self.bus, config.approval_timeout,
                                   desktop_notify if config.notify else None)
        self.drivers = DriverRegistry(discover_drivers())
        self.inference = Inference(self)
        self.tool_quota = ToolCallQuota()
        self._closing = False

    # -- the gate ---------------------------------------------------------------------
    async def syscall(self, pid: int, call: str, args: Any) -> syscalls.SyscallResult:
        return await syscalls.dispatch(self, pid, call, args)

    def tool_definitions(self) -> list[dict[str, Any]]:
        return self.drivers.definitions() + syscalls.model_tools()

    # -- processes ----------------------------------------------------------------------
    def start_agent(self, name: str, input: str | None, parent: int | None = None) -> Process:
        if self._closing:
            raise RuntimeError("the kernel is shutting down")
        spec = self.specs.get(name)
        proc = self.procs.create(spec.name, input, parent)
        self.bus.publish({"type": "proc.input", "pid": proc.pid, "agent": proc.agent,
                          "text": input or ""})
        self.procs.transition(proc, State.READY)
        self._launch(proc)
        return proc

    def _launch(self, proc: Process) -> None:
        spec = self.specs.get(proc.agent)
        proc.task = asyncio.get_running_loop().create_task(run_agent(self, proc, spec),
                                                           name=f"agent-{proc.pid}")

    def restore(self) -> list[Process]:
        """Bring back the processes a previous kernel left unfinished, from their
        checkpoints: those a person suspended stay suspended, the others continue.
        Call once, from the running loop, before serving."""
        restored = []
        for row in self.procs.leftovers():
            path = self.where.checkpoints / f"{row['pid']}.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.specs.get(row["agent"])
            except (OSError, ValueError, SpecError) as exc:
                log.warning("pid %d cannot be restored: %s", row["pid"], exc)
                self.procs.mark_lost(row["pid"], "lost: kernel stopped without a usable checkpoint")
                continue
            proc = self.procs.adopt(row)
            proc.conversation = data.get("messages") or []
            proc.turn_results = data.get("turn_results") or {}
            in_flight = data.get("in_flight")
            if in_flight and data.get("state") != State.SUSPENDED.value:
                # Parked at a boundary, the call had not started; otherwise it may have run.
                proc.turn_results[in_flight] = interrupted_result(in_flight)
            if row["state"] == "suspended" and row["reason"] == "requested":
                proc.suspend_requested = True
                self.procs.transition(proc, State.SUSPENDED, reason="requested")
            else:
                self.procs.transition(proc, State.READY, reason="restored after restart")
                self._launch(proc)
            restored.append(proc)
        return restored

    def finish(self, proc: Process, status: str, answer: str | None = None) -> None:
        if not proc.alive:
            return
        self.procs.transition(proc, State.TERMINATED, exit_status=status)
        self.inference.forget(proc.pid)
        self.bus.publish({"type": "proc.exit", "pid": proc.pid, "agent": proc.agent,
                          "status": status, "answer": answer})
        self.checkpoint(proc)

    def suspend(self, pid: int) -> Process:
        proc = self.procs.get(pid)
        if not proc.alive:
            raise ValueError(f"pid {pid} has terminated")
        proc.suspend_requested = True
        self.bus.publish({"type": "proc.suspend_requested", "pid": pid, "agent": proc.agent})
        return proc

    def resume(self, pid: int) -> Process:
        proc = self.procs.get(pid)
        if not proc.alive:
            raise ValueError(f"pid {pid} has terminated")
        proc.suspend_requested = False
        if proc.task is None and proc.state is State.SUSPENDED:
            # Restored suspended after a restart: its loop starts now.
            self.procs.transition(proc, State.READY)
            self._launch(proc)
        proc.resumed.set()
        return proc

    def kill(self, pid: int) -> Process:
        """Kill is a flag honoured at the next syscall boundary; a process parked at a
        boundary or waiting inside a syscall is woken by cancellation to honour it."""
        proc = self.procs.get(pid)
        if not proc.alive:
            return proc
        proc.kill_requested = True
        if proc.state in (State.WAITING, State.SUSPENDED, State.READY, State.CREATED):
            if proc.task is not None:
                proc.task.cancel()
        proc.resumed.set()
        return proc

    async def park(self, proc: Process) -> None:
        """Suspend at a syscall boundary until resumed (or killed)."""
        reason = "requested" if proc.suspend_requested else "preempted"
        self.procs.transition(proc, State.SUSPENDED, reason=reason)
        self.checkpoint(proc)
        proc.resumed.clear()
        while not proc.kill_requested:
            if reason == "requested" and not proc.suspend_requested:
                break
            if reason == "preempted" and not proc.suspend_requested \
                    and not self.preempt_wanted(proc):
                break
            try:
                await asyncio.wait_for(proc.resumed.wait(), 0.5 if reason == "preempted" else None)
            except asyncio.TimeoutError:
                pass
            proc.resumed.clear()
            if proc.suspend_requested:
                reason = "requested"
        if proc.kill_requested:
            return
        self.procs.transition(proc, State.READY)
        self.procs.transition(proc, State.RUNNING)
        self.checkpoint(proc)

    def preempt_wanted(self, proc: Process) -> bool:
        return self.inference.preempt_wanted(proc)

    @asynccontextmanager
    async def waiting(self, proc: Process, reason: WaitReason, detail: str = "") -> AsyncIterator[None]:
        """Mark the process waiting for the duration of the block."""
        was = proc.state
        text = reason.value + (f": {detail}" if detail else "")
        self.procs.transition(proc, State.WAITING, reason=text)
        try:
            yield
        finally:
            if proc.alive and proc.state is State.WAITING:
                self.procs.transition(proc, was if was is not State.WAITING else State.RUNNING)

    async def request_approval(self, proc: Process, capability: str, detail: str) -> bool:
        async with self.waiting(proc, WaitReason.APPROVAL, capability):
            return await self.approvals.request(proc.pid, proc.agent, capability, detail)

    def deliver(self, to: str, message: dict[str, Any]) -> list[int]:
        """Put a message into the mailboxes of a pid, or of every live instance of an
        agent; with none running, start the agent with the message as its input."""
        targets: list[Process]
        if to.isdigit():
            proc = self.procs.get(int(to))
            targets = [proc] if proc.alive else []
            if not targets:
                raise ValueError(f"pid {to} has terminated")
        else:
            self.specs.get(to)
            targets = [p for p in self.procs.live() if p.agent == to]
            if not targets:
                proc = self.start_agent(to, f"Message from {message.get('from', 'user')}: "
                                            f"{message['text']}")
                return [proc.pid]
        for proc in targets:
            proc.mailbox.put_nowait(message)
            self.bus.publish({"type": "proc.message", "pid": proc.pid, "from": message.get("from"),
                              "text": message["text"][:500]})
        return [p.pid for p in targets]

    def checkpoint(self, proc: Process) -> None:
        """Write the conversation to disk atomically (a crash never leaves half a file)."""
        path = self.where.checkpoints / f"{proc.pid}.json"
        tmp = path.with_suffix(".tmp")
        data = {"pid": proc.pid, "agent": proc.agent, "input": proc.input,
                "state": proc.state.value, "steps": proc.steps,
                "messages": proc.conversation, "turn_results": proc.turn_results,
                "in_flight": proc.in_flight}
        tmp.write_text(keys.redact(json.dumps(data, default=str)), encoding="utf-8")
        os.replace(tmp, path)

    def _state_changed(self, proc: Process, old: State) -> None:
        self.bus.publish({"type": "proc.state", "pid": proc.pid, "agent": proc.agent,
                          "state": proc.state.value, "old": old.value, "reason": proc.reason,
                          "exit_status": proc.exit_status})

    # -- lifecycle --------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        return self._closing

    async def shutdown(self) -> None:
        """Stop serving agents without ending them: each is checkpointed where it stands
        and continues when a kernel starts again (see `restore`)."""
        self._closing = True
        tasks = [p.task for p in self.procs.live() if p.task is not None and not p.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self.inference.close()
        self.db.close()
