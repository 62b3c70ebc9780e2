"""Arm (a): the same agents through a real kernel process, driven with its client.

A fresh DESKPILOT_HOME and HOME in a temporary folder; the budget's input tokens per
minute set to the provider's limit with ``set_budget``; each agent is a spec of its own
(background, weight 1) that starts its next task (a new instance) as soon as one ends,
for the arm's duration; tasks still running at the end count as unfinished.
Saturation is observed directly: the kernel's budget report lists who waits for budget.
Interactive probes (one model call each) are started during saturation; their waits
come from the kernel's ``proc.state`` events and from when the provider received them.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.metrics import ArmResult
from bench.provider import BenchProvider
from bench.workload import (
    MODEL,
    PROBE_AGENT,
    agent_name,
    probe_input,
    spec_toml,
    task_input,
)
from kernel import daemon
from kernel.client import KernelClient
from kernel.paths import Locations, locations

log = logging.getLogger("bench.kernel")
API_KEY = "sk-ant-bench-kernel-0000"
POLL = 0.2
BUDGET_POLL = 0.5


@contextmanager
def kernel_environment(base_url: str, keep: bool = False) -> Iterator[Locations]:
    """A temporary DESKPILOT_HOME and HOME, the provider's URL and a test key in this
    process's environment (the kernel inherits it), all restored afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="deskpilot-bench-"))
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.startswith(("ANTHROPIC_", "DESKPILOT_")):
                del os.environ[key]
        (tmp / "home").mkdir()
        os.environ.update(DESKPILOT_HOME=str(tmp / "dp"), HOME=str(tmp / "home"),
                          XDG_DATA_HOME=str(tmp / "xdg-data"),
                          XDG_CONFIG_HOME=str(tmp / "xdg-config"),
                          ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY=API_KEY,
                          PYTHONUNBUFFERED="1")
        where = locations().ensure()
        where.config_file.write_text(
            f'[model]\ndefault = "{MODEL}"\nbackground = ""\ntimeout_seconds = 120\n\n'
            '[approvals]\ntimeout_seconds = 30\nnotify = false\n', encoding="utf-8")
        yield where
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if keep:
            log.info("kept %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Probe:
    k: int
    t_req_wall: float
    t_req: float
    saturated: bool
    pid: int
    status: str | None = None


@dataclass
class _Driver:
    """Keeps every agent busy: starts its next task when one ends, until ``stop_at``."""

    client: KernelClient
    agents: list[str]
    ticket_chars: int
    stop_at: float
    next_task: dict[str, int] = field(default_factory=dict)
    running: dict[int, tuple[str, int]] = field(default_factory=dict)
    outcomes: dict[tuple[str, int], str] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)

    def begin(self) -> None:
        for a in self.agents:
            self._next(a)

    def _next(self, agent: str) -> None:
        if time.monotonic() >= self.stop_at:
            return
        k = self.next_task.get(agent, 0)
        self.next_task[agent] = k + 1
        proc = self.client.start_agent(agent, task_input(agent, k, self.ticket_chars))
        self.running[proc["pid"]] = (agent, k)

    def reap(self, listing: list[dict[str, Any]]) -> None:
        for row in listing:
            key = self.running.get(row["pid"])
            if key is None or row["state"] != "terminated":
                continue
            del self.running[row["pid"]]
            status = row.get("exit_status") or "?"
            self.outcomes[key] = "ok" if status == "ok" else "failed"
            if status != "ok":
                self.failures[f"exit status {status}"] += 1
                log.warning("%s task %d ended %s", key[0], key[1], status)
            self._next(key[0])

    def cut(self) -> None:
        """Tasks still running at the end: neither completed nor failed."""
        for key in self.running.values():
            self.outcomes[key] = "unfinished"
        self.running.clear()


def _probe_figures(client: KernelClient, provider: BenchProvider, probe: _Probe) -> dict[str, Any]:
    """Scheduler wait of a probe's model call, from its proc.state events."""
    states = [(e["ts"], e["state"], e.get("reason") or "") for e in client.events(probe.pid)
              if e.get("type") == "proc.state"]
    wait, first_wait, reasons = 0.0, None, []
    for (ts, state, reason), nxt in zip(states, states[1:] + [(None, "", "")], strict=True):
        if state == "waiting" and reason.startswith("budget"):
            reasons.append(reason)
            first_wait = ts if first_wait is None else first_wait
            end = nxt[0] if nxt[0] is not None else ts
            wait += end - ts
    receipt = provider.receipt_wall(PROBE_AGENT, probe.k)
    excused = 0.0
    if first_wait is not None:
        ends = [r.end_wall - first_wait for r in provider.records()
                if r.admitted and r.agent != PROBE_AGENT and r.wall <= first_wait < r.end_wall]
        excused = min(ends) if ends else 0.0
    return {"k": probe.k, "pid": probe.pid, "status": probe.status, "saturated": probe.saturated,
            "scheduler_wait_ms": round(wait * 1000, 1),
            "call_in_flight_left_ms": round(excused * 1000, 1),
            "beyond_in_flight_ms": round(max(0.0, wait - excused) * 1000, 1),
            "to_provider_ms": None if receipt is None
            else round((receipt - probe.t_req_wall) * 1000, 1),
            "reasons": sorted(set(reasons))}


def run_kernel(n: int, *, duration: float, itpm: int, seconds_per_output_token: float,
               ticket_chars: int, probes: int = 0, probe_every: float = 6.0,
               probe_warmup: float = 10.0, keep: bool = False,
               retry_after: bool = True) -> ArmResult:
    agents = [agent_name(i) for i in range(n)]
    with BenchProvider(itpm=itpm, seconds_per_output_token=seconds_per_output_token,
                       retry_after=retry_after) as provider, \
            kernel_environment(provider.base_url, keep) as where:
        try:
            info = daemon.start_background(where, timeout=30)
            log.info("kernel arm: pid %s, %d agents for %.0f s against %s", info.get("pid"), n,
                     duration, provider.base_url)
            with KernelClient(where, timeout=60) as client:
                return _drive(client, provider, agents, duration=duration, itpm=itpm,
                              ticket_chars=ticket_chars, probes=probes,
                              probe_every=probe_every, probe_warmup=probe_warmup)
        finally:
            log.info("stopping the kernel")
            if not daemon.stop(where, timeout=20):
                log.warning("no kernel was running at the end of the arm")


def _drive(client: KernelClient, provider: BenchProvider, agents: list[str], *,
           duration: float, itpm: int, ticket_chars: int, probes: int, probe_every: float,
           probe_warmup: float) -> ArmResult:
    client.set_budget("input_tokens_per_minute", str(itpm))
    for a in agents:
        client.add_agent(spec_toml(a))
    if probes:
        client.add_agent(spec_toml(PROBE_AGENT, priority="interactive"))
    started = time.monotonic()
    stop_at = started + duration
    driver = _Driver(client, agents, ticket_chars, stop_at)
    driver.begin()
    sat_polls: list[float] = []
    next_budget = started
    next_probe: float | None = None
    probe_list: list[_Probe] = []
    probe_pids: dict[int, _Probe] = {}
    while (now := time.monotonic()) < stop_at or \
            (any(p.status is None for p in probe_list) and now < stop_at + 10):
        listing = client.processes()
        driver.reap(listing)
        for row in listing:
            p = probe_pids.get(row["pid"])
            if p is not None and p.status is None and row["state"] == "terminated":
                p.status = row.get("exit_status")
        if now >= next_budget:
            next_budget = now + BUDGET_POLL
            waiting = [w for w in client.budget().get("waiting", []) if w["agent"] != PROBE_AGENT]
            if waiting:
                sat_polls.append(now)
                if next_probe is None:
                    next_probe = now + probe_warmup
        if probes and next_probe is not None and now >= next_probe \
                and len(probe_list) < probes and now < stop_at:
            saturated = bool(sat_polls) and now - sat_polls[-1] <= 2 * BUDGET_POLL
            t_wall, t_mono = time.time(), time.monotonic()
            proc = client.start_agent(PROBE_AGENT, probe_input(len(probe_list)))
            p = _Probe(len(probe_list), t_wall, t_mono, saturated, proc["pid"])
            probe_list.append(p)
            probe_pids[p.pid] = p
            next_probe = now + probe_every
            log.info("interactive probe %d started (pid %d, saturated=%s)", p.k, p.pid, saturated)
        time.sleep(POLL)
    ended = min(time.monotonic(), stop_at)
    driver.cut()
    report = client.budget()
    log.info("kernel arm done in %.1f s; kernel counted %s 429s", ended - started,
             report.get("rate_limited"))
    probe_figs = [_probe_figures(client, provider, p) for p in probe_list if p.status is not None]
    saturated_span = (sat_polls[0], sat_polls[-1]) if len(sat_polls) >= 2 else None
    return ArmResult(arm="kernel", n=len(agents), agents=agents,
                     outcomes=driver.outcomes, started=started, ended=ended,
                     saturated=saturated_span,
                     saturation_source="kernel budget report lists agents waiting for budget",
                     count_429=provider.count_429,
                     max_window_input=provider.max_window_usage("input_tokens"),
                     records=provider.records(), failures=dict(driver.failures),
                     probes=probe_figs,
                     person_from=probe_list[0].t_req if probe_list else None,
                     saturated_at=sat_polls)
