"""`deskpilot`: the command line. A client of the kernel's local API, like the tray.

Output contract: results on stdout (`--json` gives machine-readable listings), progress
and errors on stderr; exit 0 on success, 1 on a refused or failed request, 2 on usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from kernel.client import KernelClient, KernelError, KernelUnavailable

NOT_RUNNING = "the kernel is not running; start it with `deskpilot kernel start`"


def _out(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        text = render(data)
        if text:
            sys.stdout.write(text + "\n")


def _table(rows: list[dict[str, Any]], cols: list[str], empty: str) -> str:
    if not rows:
        return empty
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _client() -> KernelClient:
    return KernelClient()


# -- kernel -----------------------------------------------------------------------------
def cmd_kernel(args: argparse.Namespace) -> int:
    from kernel import daemon

    if args.action == "start":
        status = daemon.start_background()
        _out(status, args.json, lambda s: f"kernel running (pid {s['pid']}, socket {s['socket']})")
    elif args.action == "stop":
        stopped = daemon.stop()
        _out({"stopped": stopped}, args.json,
             lambda d: "kernel stopped" if d["stopped"] else "no kernel was running")
    elif args.action == "run":
        from kernel.__main__ import main as kernel_main
        return kernel_main()
    else:
        with _client() as c:
            try:
                status = c.status()
            except KernelUnavailable:
                status = {"running": False, "pid": None, "socket": str(c.where.socket),
                          "version": None}
        _out(status, args.json, lambda s: (
            f"kernel running: pid {s['pid']}, version {s['version']}, {s['agents_running']} "
            f"agent(s) running, socket {s['socket']}" if s["running"]
            else "kernel not running"))
    return 0


# -- ask --------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    from kernel import daemon

    daemon.ensure_running()
    with _client() as c:
        proc = c.start_agent(args.agent, args.text)
        pid = proc["pid"]
        _err(f"[{args.agent} pid {pid}]")
        try:
            return _follow(c, pid, interactive=sys.stdin.isatty())
        except KeyboardInterrupt:
            c.kill(pid)
            _err(f"interrupted; killed pid {pid}")
            return 130


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _follow(c: KernelClient, pid: int, interactive: bool) -> int:
    """Stream a process's progress to stderr; its answer to stdout when it exits."""
    for ev in c.events(pid):
        kind = ev["type"]
        if kind == "proc.tool":
            _err(f"-> {ev['tool']} {json.dumps(ev.get('args', {}), ensure_ascii=False)[:200]}")
        elif kind == "proc.tool_result" and not ev.get("ok", True):
            _err(f"   refused/failed: {ev.get('text', '')[:300]}")
        elif kind == "proc.retry":
            _err(f"   {ev['error']}; retrying in {ev['delay']:.1f} s")
        elif kind == "proc.state" and ev.get("state") == "waiting" and ev.get("reason", "").startswith("budget"):
            _err(f"   waiting: {ev['reason']}")
        elif kind == "approval.requested":
            _approval_prompt(c, ev, interactive)
        elif kind == "proc.exit":
            answer = ev.get("answer") or ""
            if ev["status"] == "ok":
                sys.stdout.write(answer + "\n")
                return 0
            _err(f"{ev['agent']} ended: {ev['status']}" + (f": {answer}" if answer else ""))
            return 1
    _err("lost the kernel's event stream")
    return 1


def _approval_prompt(c: KernelClient, ev: dict[str, Any], interactive: bool) -> None:
    aid = ev["id"]
    _err(f"?  {ev['agent']} asks for {ev['capability']}  ({ev['detail'][:200]})")
    if not interactive:
        _err(f"   waiting for approval: `deskpilot approvals approve {aid}` or `... deny {aid}`")
        return
    try:
        sys.stderr.write("   allow? [y/N] ")
        sys.stderr.flush()
        reply = sys.stdin.readline().strip().lower()
    except (EOFError, OSError):
        reply = ""
    try:
        c.answer_approval(aid, reply in ("y", "yes"))
    except KernelError as exc:
        _err(f"   {exc}")


# -- agents -----------------------------------------------------------------------------
def cmd_agents(args: argparse.Namespace) -> int:
    with _client() as c:
        a = args.action
        if a == "list":
            data = {"agents": c.agents(), "processes": c.processes()}
            _out(data, args.json, lambda d: _table(d["agents"], ["name", "priority", "description"],
                                                   "no agents") + "\n\n" +
                 _table(d["processes"][-args.limit:], ["pid", "agent", "state", "reason",
                                                       "exit_status", "steps"], "no processes"))
        elif a == "add":
            try:
                text = open(args.spec, encoding="utf-8").read()
            except OSError as exc:
                _err(f"deskpilot: cannot read {args.spec}: {exc.strerror}")
                return 1
            spec = c.add_agent(text)
            _out(spec, args.json, lambda s: f"added agent {s['name']}")
        elif a == "start":
            proc = c.start_agent(args.name, args.input)
            _out(proc, args.json, lambda p: f"started {p['agent']} as pid {p['pid']}")
        elif a in ("suspend", "resume", "kill"):
            proc = getattr(c, a)(args.pid)
            verb = {"suspend": "suspending", "resume": "resumed", "kill": "killing"}[a]
            _out(proc, args.json, lambda p: f"{verb} pid {p['pid']} ({p['agent']}): {p['state']}")
        elif a == "logs":
            if args.follow:
                return _follow(c, args.pid, interactive=False)
            _out(c.logs(args.pid), args.json, _render_logs)
    return 0


def _render_logs(events: list[dict[str, Any]]) -> str:
    lines = []
    for ev in events:
        kind = ev["type"].removeprefix("proc.")
        if kind == "state":
            body = f"{ev['old']} -> {ev['state']}" + (f" ({ev['reason']})" if ev.get("reason") else "")
        elif kind == "tool":
            body = f"{ev['tool']} {json.dumps(ev.get('args', {}), ensure_ascii=False)}"
        elif kind == "tool_result":
            body = ("ok: " if ev.get("ok") else "error: ") + ev.get("text", "")
        elif kind == "exit":
            body = f"{ev['status']}: {ev.get('answer') or ''}"
        else:
            body = ev.get("text") or json.dumps({k: v for k, v in ev.items()
                                                 if k not in ("type", "ts", "seq", "pid")})
        lines.append(f"{ev.get('seq', ''):>4} {kind:<12} {body}")
    return "\n".join(lines) or "no events"


# -- grants and approvals ---------------------------------------------------------------------
def cmd_grants(args: argparse.Namespace) -> int:
    with _client() as c:
        if args.action == "list":
            rows = c.grants(args.agent)
            _out(rows, args.json, lambda r: _table(r, ["agent", "capability", "mode", "source"],
                                                   "no grants"))
        elif args.action == "revoke":
            _out(c.revoke_grant(args.agent, args.capability), args.json,
                 lambda r: f"revoked {r['capability']} from {r['agent']}")
        else:
            _out(c.set_grant(args.agent, args.capability, args.action), args.json,
                 lambda r: f"{r['agent']}: {r['capability']} -> {r['mode']}")
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    with _client() as c:
        if args.action == "list":
            rows = c.approvals(None if args.all else "pending")
            _out(rows, args.json, lambda r: _table(r, ["id", "pid", "agent", "capability", "status",
                                                       "detail"], "no pending approvals"))
        else:
            row = c.answer_approval(args.id, args.action == "approve")
            _out(row, args.json, lambda r: f"request {r['id']} {r['status']}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with _client() as c:
        rows = c.audit(args.agent, args.limit)
    _out(rows, args.json, lambda r: _table(
        [{**x, "args": json.dumps(x["args"], ensure_ascii=False)[:60],
          "result": str(x["result"])[:60], "ms": f"{x['duration_ms']:.0f}"} for x in r],
        ["id", "agent", "pid", "call", "decision", "args", "result", "ms"], "audit log is empty"))
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    with _client() as c:
        if args.action == "set":
            budget = c.set_budget(args.key, args.value)
            _out(budget, args.json, lambda b: f"{args.key} = {b.get(args.key.replace('-', '_'))}"
                                              " (applied to running agents)")
            return 0
        if args.action == "price":
            price = c.set_price(args.model, args.input, args.output, args.cache_write,
                                args.cache_read)
            _out(price, args.json, lambda p: "\n".join(
                f"{m}: ${v['input']:g} in, ${v['output']:g} out, ${v['cache_write']:g} cache "
                f"write, ${v['cache_read']:g} cache read per million tokens (applied at once)"
                for m, v in p.items()))
            return 0
        report = c.budget()
    _out(report, args.json, _render_budget)
    return 0


def _render_budget(r: dict[str, Any]) -> str:
    def limit(v: Any) -> str:
        return "unlimited" if v is None else str(v)

    lines = [f"policy: {r['policy']}"]
    for key, row in r["limits"].items():
        lines.append(f"{key:<26} {limit(row['limit']):>12}   in use: {row['used']}")
    spend = r["spend"]
    lines.append(f"{'usd_per_day':<26} {limit(spend['usd_per_day']):>12}   spent today: "
                 f"${spend['usd_today']:.4f}")
    lines.append(f"{'usd_per_month':<26} {limit(spend['usd_per_month']):>12}   spent this month: "
                 f"${spend['usd_this_month']:.4f}")
    if r.get("paused_for"):
        lines.append(f"provider back-off: {r['paused_for']:.1f} s left")
    for w in r.get("waiting", []):
        lines.append(f"waiting: pid {w['pid']} ({w['agent']}): {w['reason']}")
    # Tokens as the budget counts them: uncached input + cache writes + output.
    rows = [{"agent": a, "tokens_today": d["today"]["counted_input_tokens"]
             + d["today"]["output_tokens"],
             "cached_today": d["today"].get("cache_read_input_tokens", 0),
             "usd_today": f"{d['today']['usd']:.4f}", "usd_month": f"{d['month']['usd']:.4f}"}
            for a, d in r["agents"].items()]
    lines += ["", _table(rows, ["agent", "tokens_today", "cached_today", "usd_today", "usd_month"],
                         "no model calls yet")]
    prices = [{"model": m, "input": f"{p['input']:g}", "output": f"{p['output']:g}",
               "cache_write": f"{p['cache_write']:g}", "cache_read": f"{p['cache_read']:g}"}
              for m, p in (r.get("prices") or {}).items()]
    if prices:
        lines += ["", "prices, $ per million tokens (`deskpilot budget price MODEL IN OUT`):",
                  _table(prices, ["model", "input", "output", "cache_write", "cache_read"], "")]
    return "\n".join(lines)


def cmd_send(args: argparse.Namespace) -> int:
    with _client() as c:
        _out(c.send(args.agent, args.text), args.json,
             lambda r: f"delivered to pid(s) {', '.join(map(str, r['delivered_to']))}")
    return 0


def cmd_auth(args: argparse.Namespace) -> int:
    from kernel import keys

    if args.action == "set-key":
        if args.stdin or not sys.stdin.isatty():
            key = sys.stdin.readline().strip()
        else:
            import getpass
            key = getpass.getpass("Anthropic API key: ").strip()
        if not key:
            _err("deskpilot: no key given")
            return 1
        keys.set_api_key(key)
        _err("key stored in the system keyring; restart the kernel to use it")
    elif args.action == "delete-key":
        keys.delete_api_key()
        _err("key removed from the system keyring")
    else:
        source = "environment" if os.environ.get("ANTHROPIC_API_KEY") else None
        if source is None:
            source = "keyring" if keys.api_key() else "none"
        _out({"key_source": source}, args.json, lambda d: f"API key from: {d['key_source']}")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from app.launch import run_app
    return run_app([])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deskpilot", description="DeskPilot: an agent OS for your desktop")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    # `--json` is accepted after any (sub)command; SUPPRESS keeps a leaf from resetting it.
    leaf = argparse.ArgumentParser(add_help=False)
    leaf.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                      help="machine-readable output")

    def subparsers(parent: argparse.ArgumentParser) -> Any:
        group = parent.add_subparsers(dest="action", required=True)
        original = group.add_parser

        def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
            return original(name, parents=[leaf], **kw)

        group.add_parser = add_parser  # type: ignore[method-assign]
        return group

    def cmd(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    cmd("app", cmd_app, "the tray app")
    k = cmd("kernel", cmd_kernel, "start, stop or inspect the kernel process")
    k.add_argument("action", choices=["start", "stop", "status", "run"],
                   help="run: in the foreground")
    a = cmd("ask", cmd_ask, "one request to the assistant; the answer goes to stdout")
    a.add_argument("text")
    a.add_argument("--agent", default="assistant", help=argparse.SUPPRESS)

    ag = cmd("agents", cmd_agents, "agent specs and running instances")
    agsub = subparsers(ag)
    lst = agsub.add_parser("list", help="agents and processes")
    lst.add_argument("--limit", type=int, default=50)
    agsub.add_parser("add", help="install an agent spec (TOML)").add_argument("spec")
    st = agsub.add_parser("start", help="start an instance")
    st.add_argument("name")
    st.add_argument("--input", default=None, help="its first message")
    for verb in ("suspend", "resume", "kill"):
        agsub.add_parser(verb, help=f"{verb} a process").add_argument("pid", type=int)
    lg = agsub.add_parser("logs", help="what a process did")
    lg.add_argument("pid", type=int)
    lg.add_argument("--follow", "-f", action="store_true")

    g = cmd("grants", cmd_grants, "what each agent may do")
    gsub = subparsers(g)
    gsub.add_parser("list").add_argument("agent", nargs="?")
    for verb in ("allow", "ask", "deny", "revoke"):
        gp = gsub.add_parser(verb, help=f"{verb} a capability, e.g. fs.read:~/Documents/**")
        gp.add_argument("agent")
        gp.add_argument("capability")

    ap = cmd("approvals", cmd_approvals, "requests waiting for your answer")
    apsub = subparsers(ap)
    apsub.add_parser("list").add_argument("--all", action="store_true", help="answered ones too")
    for verb in ("approve", "deny"):
        apsub.add_parser(verb).add_argument("id", type=int)

    au = cmd("audit", cmd_audit, "the audit log: every syscall and its decision")
    au.add_argument("--agent")
    au.add_argument("--limit", type=int, default=50)

    b = cmd("budget", cmd_budget, "the inference budget all agents share")
    bsub = subparsers(b)
    bsub.add_parser("show", help="limits, use and spend per agent")
    bset = bsub.add_parser("set", help="set a limit (applies at once); 'none' removes it")
    bset.add_argument("key", help="input_tokens_per_minute, output_tokens_per_minute, "
                                  "requests_per_minute, max_concurrent, usd_per_day, "
                                  "usd_per_month, policy")
    bset.add_argument("value")
    bprice = bsub.add_parser("price", help="a model's US dollars per million tokens "
                                           "(applies at once); model * = every other model")
    bprice.add_argument("model", help="a model id, or a prefix of one (claude-sonnet-4)")
    bprice.add_argument("input", type=float, help="$ per million uncached input tokens")
    bprice.add_argument("output", type=float, help="$ per million output tokens")
    bprice.add_argument("--cache-write", type=float, default=None,
                        help="$ per million cache-write tokens (default 1.25 x input)")
    bprice.add_argument("--cache-read", type=float, default=None,
                        help="$ per million cache-read tokens (default 0.1 x input)")

    s = cmd("send", cmd_send, "send a message to an agent")
    s.add_argument("agent")
    s.add_argument("text")

    ath = cmd("auth", cmd_auth, "the Anthropic API key in the system keyring")
    ath.add_argument("action", choices=["set-key", "delete-key", "status"])
    ath.add_argument("--stdin", action="store_true", help="read the key from stdin")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            return cmd_app(args)
        args.json = False
        args.action = "status"
        cmd_kernel(args)
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KernelUnavailable:
        _err(f"deskpilot: {NOT_RUNNING}")
        return 1
    except KernelError as exc:
        _err(f"deskpilot: {exc}")
        return 1
    except (RuntimeError, TimeoutError) as exc:
        _err(f"deskpilot: {exc}")
        return 1
    except Exception as exc:
        from kernel.keys import KeyringUnavailable
        if isinstance(exc, KeyringUnavailable):
            _err(f"deskpilot: {exc}")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
