"""The kernel's local API: HTTP + JSON on a Unix socket (mode 0600), OpenAPI at
/openapi.json, and server-sent event streams for the UI and the CLI."""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from kernel import __version__
from kernel.capabilities import BadCapability, Mode
from kernel.core import Kernel
from kernel.proc import NoSuchProcess
from kernel.sched import BudgetError
from kernel.specs import SpecError


class StartBody(BaseModel):
    input: str | None = None


class SpecBody(BaseModel):
    spec: str


class GrantBody(BaseModel):
    agent: str
    capability: str
    mode: Mode


class RevokeBody(BaseModel):
    agent: str
    capability: str


class AnswerBody(BaseModel):
    approve: bool


class SyscallBody(BaseModel):
    call: str
    args: dict[str, Any] = {}


class BudgetBody(BaseModel):
    key: str
    value: str


class PriceBody(BaseModel):
    model: str
    input: float
    output: float
    cache_write: float | None = None
    cache_read: float | None = None


class SendBody(BaseModel):
    agent: str
    text: str


def create_app(kernel: Kernel, stop: asyncio.Event) -> FastAPI:
    api = FastAPI(title="DeskPilot kernel", version=__version__,
                  description="Local API of the DeskPilot agent kernel")
    started = time.time()

    def proc_or_404(pid: int) -> Any:
        try:
            return kernel.procs.get(pid)
        except NoSuchProcess as exc:
            raise HTTPException(404, str(exc)) from None

    @api.get("/status")
    async def status() -> dict[str, Any]:
        live = kernel.procs.live()
        return {"running": True, "pid": os.getpid(), "socket": str(kernel.where.socket),
                "version": __version__, "started": started, "home": str(kernel.where.data),
                "agents_running": len(live), "model": kernel.config.model,
                "tools": kernel.drivers.names()}

    @api.post("/kernel/stop")
    async def kernel_stop() -> dict[str, Any]:
        stop.set()
        return {"stopping": True}

    @api.get("/agents")
    async def agents() -> list[dict[str, Any]]:
        return [kernel.specs.describe(s) for s in kernel.specs.all()]

    @api.post("/agents")
    async def add_agent(body: SpecBody) -> dict[str, Any]:
        try:
            spec = kernel.specs.add(body.spec)
        except SpecError as exc:
            raise HTTPException(400, str(exc)) from None
        kernel.grants.seed(spec.name, [(g.capability, g.mode) for g in spec.grants])
        return kernel.specs.describe(spec)

    @api.post("/agents/{name}/start")
    async def start_agent(name: str, body: StartBody) -> dict[str, Any]:
        try:
            proc = kernel.start_agent(name, body.input)
        except SpecError as exc:
            raise HTTPException(404, str(exc)) from None
        return proc.as_dict()

    @api.get("/procs")
    async def procs() -> list[dict[str, Any]]:
        return kernel.procs.listing()

    @api.get("/procs/{pid}")
    async def proc(pid: int) -> dict[str, Any]:
        return proc_or_404(pid).as_dict()

    @api.post("/procs/{pid}/{action}")
    async def control(pid: int, action: str) -> dict[str, Any]:
        proc_or_404(pid)
        actions = {"suspend": kernel.suspend, "resume": kernel.resume, "kill": kernel.kill}
        if action not in actions:
            raise HTTPException(404, f"unknown action {action!r}")
        try:
            return actions[action](pid).as_dict()
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @api.post("/procs/{pid}/syscall")
    async def syscall(pid: int, body: SyscallBody) -> dict[str, Any]:
        res = await kernel.syscall(pid, body.call, body.args)
        return {"ok": res.ok, "value": res.value, "error": res.error, "decision": res.decision}

    @api.get("/procs/{pid}/logs")
    async def logs(pid: int) -> list[dict[str, Any]]:
        events = kernel.bus.history(pid)
        if not events and kernel.db.one("SELECT pid FROM procs WHERE pid=?", (pid,)) is None:
            raise HTTPException(404, f"no process with pid {pid}")
        return events

    async def sse(source: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
        async for event in source:
            yield {"event": event["type"], "data": json.dumps(event, default=str)}

    @api.get("/procs/{pid}/events")
    async def proc_events(pid: int, request: Request) -> EventSourceResponse:
        if kernel.db.one("SELECT pid FROM procs WHERE pid=?", (pid,)) is None:
            raise HTTPException(404, f"no process with pid {pid}")
        return EventSourceResponse(sse(kernel.bus.follow(pid)), ping=10)

    @api.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        return EventSourceResponse(sse(kernel.bus.follow()), ping=10)

    @api.get("/grants")
    async def grants(agent: str | None = None) -> list[dict[str, Any]]:
        return kernel.grants.listing(agent)

    @api.put("/grants")
    async def set_grant(body: GrantBody) -> dict[str, Any]:
        try:
            kernel.specs.get(body.agent)
            row = kernel.grants.set(body.agent, body.capability, body.mode)
        except (BadCapability, SpecError) as exc:
            raise HTTPException(400, str(exc)) from None
        kernel.bus.publish({"type": "grants.changed", **row})
        return row

    @api.post("/grants/revoke")
    async def revoke(body: RevokeBody) -> dict[str, Any]:
        try:
            removed = kernel.grants.revoke(body.agent, body.capability)
        except BadCapability as exc:
            raise HTTPException(400, str(exc)) from None
        if not removed:
            raise HTTPException(404, f"{body.agent} has no rule {body.capability}")
        kernel.bus.publish({"type": "grants.changed", "agent": body.agent,
                            "capability": body.capability, "mode": None})
        return {"agent": body.agent, "capability": body.capability, "revoked": True}

    @api.get("/approvals")
    async def approvals(status: str | None = None) -> list[dict[str, Any]]:
        return kernel.approvals.listing(status)

    @api.post("/approvals/{approval_id}")
    async def answer(approval_id: int, body: AnswerBody) -> dict[str, Any]:
        try:
            return kernel.approvals.answer(approval_id, body.approve)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @api.get("/audit")
    async def audit(agent: str | None = None, pid: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return kernel.audit.query(agent=agent, pid=pid, limit=max(1, min(limit, 10_000)))

    @api.get("/budget")
    async def budget() -> dict[str, Any]:
        return kernel.inference.report()

    @api.put("/budget")
    async def set_budget(body: BudgetBody) -> dict[str, Any]:
        try:
            return kernel.inference.set_budget(body.key, body.value).model_dump()
        except BudgetError as exc:
            raise HTTPException(400, str(exc)) from None

    @api.put("/budget/prices")
    async def set_price(body: PriceBody) -> dict[str, Any]:
        try:
            return kernel.inference.set_price(body.model, input=body.input, output=body.output,
                                              cache_write=body.cache_write,
                                              cache_read=body.cache_read)
        except BudgetError as exc:
            raise HTTPException(400, str(exc)) from None

    @api.post("/send")
    async def send(body: SendBody) -> dict[str, Any]:
        try:
            pids = kernel.deliver(body.agent, {"from": "user", "text": body.text})
        except (SpecError, NoSuchProcess, ValueError) as exc:
            raise HTTPException(404, str(exc)) from None
        return {"delivered_to": pids}

    return api
