"""Client of the kernel's local API (HTTP + JSON over the Unix socket).

The CLI and the tray app both use this; neither talks to the kernel any other way.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from kernel.paths import Locations, locations


class KernelUnavailable(Exception):
    """No kernel answers on the socket."""


class KernelError(Exception):
    """The kernel refused a request; `str(exc)` is its message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class KernelClient:
    def __init__(self, where: Locations | None = None, timeout: float = 30.0) -> None:
        self.where = where or locations()
        self._timeout = timeout
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.where.socket)),
                                  base_url="http://deskpilot", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "KernelClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> Any:
        if not self.where.socket.exists():
            raise KernelUnavailable(f"no kernel socket at {self.where.socket}")
        try:
            resp = self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError,
                ConnectionRefusedError) as exc:
            raise KernelUnavailable(str(exc)) from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            if not isinstance(detail, str):
                detail = json.dumps(detail)
            raise KernelError(resp.status_code, detail)
        return resp.json() if resp.content else None

    def is_running(self) -> bool:
        try:
            self.status()
            return True
        except KernelUnavailable:
            return False

    # -- kernel ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")

    def shutdown(self) -> None:
        self._request("POST", "/kernel/stop")

    # -- agents and processes -------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        return self._request("GET", "/agents")

    def add_agent(self, spec_toml: str) -> dict[str, Any]:
        return self._request("POST", "/agents", json={"spec": spec_toml})

    def start_agent(self, name: str, input: str | None = None) -> dict[str, Any]:
        return self._request("POST", f"/agents/{name}/start", json={"input": input})

    def processes(self) -> list[dict[str, Any]]:
        return self._request("GET", "/procs")

    def process(self, pid: int) -> dict[str, Any]:
        return self._request("GET", f"/procs/{pid}")

    def suspend(self, pid: int) -> dict[str, Any]:
        return self._request("POST", f"/procs/{pid}/suspend")

    def resume(self, pid: int) -> dict[str, Any]:
        return self._request("POST", f"/procs/{pid}/resume")

    def kill(self, pid: int) -> dict[str, Any]:
        return self._request("POST", f"/procs/{pid}/kill")

    def logs(self, pid: int) -> list[dict[str, Any]]:
        return self._request("GET", f"/procs/{pid}/logs")

    def syscall(self, pid: int, call: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/procs/{pid}/syscall", json={"call": call, "args": args})

    def send(self, agent: str, text: str) -> dict[str, Any]:
        return self._request("POST", "/send", json={"agent": agent, "text": text})

    # -- grants and approvals -------------------------------------------------------
    def grants(self, agent: str | None = None) -> list[dict[str, Any]]:
        return self._request("GET", "/grants", params={"agent": agent} if agent else None)

    def set_grant(self, agent: str, capability: str, mode: str) -> dict[str, Any]:
        return self._request("PUT", "/grants",
                             json={"agent": agent, "capability": capability, "mode": mode})

    def revoke_grant(self, agent: str, capability: str) -> dict[str, Any]:
        return self._request("POST", "/grants/revoke",
                             json={"agent": agent, "capability": capability})

    def approvals(self, status: str | None = "pending") -> list[dict[str, Any]]:
        return self._request("GET", "/approvals", params={"status": status} if status else None)

    def answer_approval(self, approval_id: int, approve: bool) -> dict[str, Any]:
        return self._request("POST", f"/approvals/{approval_id}", json={"approve": approve})

    # -- budget -----------------------------------------------------------------------
    def budget(self) -> dict[str, Any]:
        return self._request("GET", "/budget")

    def set_budget(self, key: str, value: str) -> dict[str, Any]:
        return self._request("PUT", "/budget", json={"key": key, "value": value})

    def set_price(self, model: str, input: float, output: float, cache_write: float | None = None,
                  cache_read: float | None = None) -> dict[str, Any]:
        """US dollars per million tokens for `model` (`*`: every model without a price)."""
        return self._request("PUT", "/budget/prices", json={
            "model": model, "input": input, "output": output, "cache_write": cache_write,
            "cache_read": cache_read})

    # -- audit ------------------------------------------------------------------------
    def audit(self, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if agent:
            params["agent"] = agent
        return self._request("GET", "/audit", params=params)

    # -- events -----------------------------------------------------------------------
    def events(self, pid: int | None = None) -> Iterator[dict[str, Any]]:
        """Kernel events as they happen. With `pid`: that process's history, then live
        events, ending after it terminates."""
        if not self.where.socket.exists():
            raise KernelUnavailable(f"no kernel socket at {self.where.socket}")
        path = f"/procs/{pid}/events" if pid is not None else "/events"
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.where.socket)),
                          base_url="http://deskpilot", timeout=httpx.Timeout(None)) as http:
            try:
                with connect_sse(http, "GET", path) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise KernelError(source.response.status_code, source.response.text)
                    for sse in source.iter_sse():
                        yield json.loads(sse.data)
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                raise KernelUnavailable(str(exc)) from exc
