"""Capabilities `domain.verb[:scope]` and how a rule matches a request.

Matching rules (DESIGN.md):
- The rule's name may use shell globs (`fs.*`, `mcp.files.*`); the request's name is exact.
- A rule without a scope matches every scope of its name; `*` or `**` alone does too.
- Path scopes: `~` is the user's home, `**` any number of segments (zero included, so
  `~/Downloads/**` also covers `~/Downloads` itself), `*` exactly one segment. The rule
  is expanded and its literal prefix resolved; the request path must already be fully
  resolved (`resolve_path`) - so `..` and symlinks never lead out of a scope.
- Other scopes match with shell globs (`*.wikipedia.org`, `appearance.*`).
- Several rules match: deny wins over ask, ask over allow.
"""
from __future__ import annotations

import enum
import glob
import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# `domain.verb`, or a bare word such as `notify` (DESIGN.md lists it as a capability).
NAME_RE = re.compile(r"^[a-z0-9_*?\-]+(\.[a-z0-9_*?\-]+)*$")
GLOB_CHARS = set("*?[")


class Mode(str, enum.Enum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


_STRENGTH = {Mode.ALLOW: 0, Mode.ASK: 1, Mode.DENY: 2}


class BadCapability(ValueError):
    pass


@dataclass(frozen=True)
class Capability:
    name: str
    scope: str | None = None

    def __str__(self) -> str:
        return self.name if self.scope is None else f"{self.name}:{self.scope}"


def parse(text: str) -> Capability:
    """Parse `domain.verb[:scope]`; raises `BadCapability` with a reason."""
    text = text.strip()
    name, sep, scope = text.partition(":")
    if not NAME_RE.match(name):
        raise BadCapability(
            f"{text!r} is not a capability: expected domain.verb[:scope], e.g. fs.read:~/Documents/**")
    if sep and not scope:
        raise BadCapability(f"{text!r}: empty scope after ':'")
    return Capability(name, scope if sep else None)


def resolve_path(raw: str | os.PathLike[str], home: Path | None = None) -> Path:
    """The path as the OS will see it at this moment: `~` expanded, absolute, `..` and
    every symlink resolved (missing tails are kept literally after resolving what exists)."""
    text = os.fspath(raw)
    if text == "~" or text.startswith("~/"):
        text = str(home or Path.home()) + text[1:]
    # No lexical `abspath` first: `link/..` is the link target's parent, not the link's.
    # realpath starts a relative path at the (real) working directory itself.
    return Path(os.path.realpath(text))


def _norm(path: str) -> str:
    return os.path.normcase(path)


def _pattern_segments(scope: str, home: Path | None) -> list[str] | None:
    """Rule path pattern -> normalised segments, with its literal prefix resolved.
    None means "any path"."""
    if scope in ("*", "**"):
        return None
    base = ""
    if scope == "~" or scope.startswith("~/"):
        # The home directory is literal even if its name holds glob characters.
        base, scope = str(home or Path.home()), "/" + scope[1:]
    if not scope.startswith("/"):
        # A relative rule can't name a place on disk; it matches nothing rather than
        # something surprising.
        return []
    parts = [p for p in scope.split("/") if p not in ("", ".")]
    literal: list[str] = []
    for p in parts:
        if GLOB_CHARS & set(p) or p == "..":
            break
        literal.append(p)
    prefix = os.path.realpath(base + "/" + "/".join(literal))
    rest = parts[len(literal):]
    # The resolved prefix is literal: escape glob characters in its names (a home or a
    # symlink target named `a[b]` or `*` must not turn into a wildcard).
    segs = [glob.escape(s) for s in prefix.split("/") if s] + rest
    return [_norm(s) for s in segs]


def _match_segments(pat: list[str], path: list[str]) -> bool:
    # Iterative glob over segments with `**` backtracking (linear-ish, no recursion blowup).
    pi = si = 0
    star_pi, star_si = -1, 0
    while si < len(path):
        if pi < len(pat) and pat[pi] == "**":
            star_pi, star_si = pi, si
            pi += 1
        elif pi < len(pat) and pat[pi] != ".." and fnmatchcase(path[si], pat[pi]):
            pi += 1
            si += 1
        elif star_pi >= 0:
            star_si += 1
            si = star_si
            pi = star_pi + 1
        else:
            return False
    while pi < len(pat) and pat[pi] == "**":
        pi += 1
    return pi == len(pat)


def path_matches(rule_scope: str, resolved: Path, home: Path | None = None) -> bool:
    segs = _pattern_segments(rule_scope, home)
    if segs is None:
        return True
    if not segs and rule_scope not in ("/",):
        return False
    target = [_norm(s) for s in str(resolved).split("/") if s]
    return _match_segments(segs, target)


def rule_matches(rule: Capability, name: str, scope: str | None, scope_is_path: bool,
                 home: Path | None = None) -> bool:
    if not fnmatchcase(name, rule.name):
        return False
    if rule.scope is None or rule.scope in ("*", "**"):
        return True
    if scope is None:
        return False
    if scope_is_path:
        return path_matches(rule.scope, Path(scope), home)
    return fnmatchcase(scope, rule.scope)


def decide(rules: list[tuple[Capability, Mode]], name: str, scope: str | None,
           scope_is_path: bool, default: Mode, home: Path | None = None) -> tuple[Mode, str | None]:
    """The mode for a request and the rule that decided it (None: the agent's default)."""
    best: tuple[Mode, str] | None = None
    for rule, mode in rules:
        if rule_matches(rule, name, scope, scope_is_path, home):
            if best is None or _STRENGTH[mode] > _STRENGTH[best[0]]:
                best = (mode, str(rule))
    if best is None:
        return default, None
    return best
