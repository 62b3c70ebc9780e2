"""kernel.capabilities: parsing, matching, precedence, and path resolution on a real disk."""
from __future__ import annotations

import errno
import os
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.capabilities import (
    BadCapability,
    Capability,
    Mode,
    _match_segments,
    decide,
    parse,
    path_matches,
    resolve_path,
    rule_matches,
)

PROPS = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def real(p: Path | str) -> Path:
    return Path(os.path.realpath(p))


def inside(path: Path | str, root: Path | str) -> bool:
    path, root = os.fspath(path), os.fspath(root)
    return os.path.commonpath([root, path]) == root


# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, name, scope", [
    ("fs.read:~/Documents/**", "fs.read", "~/Documents/**"),
    ("fs.write:/tmp/work/**", "fs.write", "/tmp/work/**"),
    ("fs.delete:~/Downloads/*", "fs.delete", "~/Downloads/*"),
    ("apps.launch:firefox", "apps.launch", "firefox"),
    ("apps.quit:*", "apps.quit", "*"),
    ("process.list", "process.list", None),
    ("settings.write:appearance.dark-mode", "settings.write", "appearance.dark-mode"),
    ("net.fetch:*.wikipedia.org", "net.fetch", "*.wikipedia.org"),
    ("memory.read:shared/family", "memory.read", "shared/family"),
    ("mcp.files.read_file", "mcp.files.read_file", None),
    ("mcp.my-server.tool", "mcp.my-server.tool", None),
    ("notify", "notify", None),  # listed as a capability in DESIGN.md
    ("fs.*", "fs.*", None),
    ("fs.re?d:/x", "fs.re?d", "/x"),
    ("net.fetch:localhost:8080", "net.fetch", "localhost:8080"),  # only the first ':' splits
    ("  fs.read:/tmp/x  ", "fs.read", "/tmp/x"),  # surrounding blanks ignored
])
def test_parse_good(text: str, name: str, scope: str | None) -> None:
    cap = parse(text)
    assert cap == Capability(name, scope)
    assert str(cap) == text.strip()
    assert parse(str(cap)) == cap  # round trip


@pytest.mark.parametrize("text", [
    "", "   ", "FS.read", "fs.Read", "fs.", ".read", "fs..read", "fs read", "fs/read",
    "fs.read/x", ":~/x", "fs.réad", "fs.read!", "fs,read",
])
def test_parse_bad_name(text: str) -> None:
    with pytest.raises(BadCapability) as info:
        parse(text)
    msg = str(info.value)
    assert repr(text.strip()) in msg
    assert "domain.verb" in msg


def test_parse_empty_scope_is_refused_with_its_own_reason() -> None:
    with pytest.raises(BadCapability, match="empty scope"):
        parse("fs.read:")


def test_bad_capability_is_a_value_error() -> None:
    assert issubclass(BadCapability, ValueError)


# --------------------------------------------------------------------------- names

@pytest.mark.parametrize("rule, name, expected", [
    ("fs.*", "fs.read", True),
    ("fs.*", "fs.write", True),
    ("fs.*", "net.fetch", False),
    ("fs.*", "fsx.read", False),
    ("mcp.files.*", "mcp.files.read", True),
    ("mcp.files.*", "mcp.other.read", False),
    ("fs.read", "fs.read", True),
    ("fs.read", "fs.readx", False),
    ("fs.read", "fs.write", False),
    ("*.list", "process.list", True),
    ("fs.re?d", "fs.read", True),
])
def test_name_globs(rule: str, name: str, expected: bool) -> None:
    assert rule_matches(parse(rule), name, None, False) is expected


def test_request_name_is_exact_not_a_glob() -> None:
    # A request named with glob characters does not widen anything.
    assert not rule_matches(parse("fs.read"), "fs.*", None, False)


# --------------------------------------------------------------------------- scopes

def test_unscoped_rule_matches_every_scope(tmp_path: Path) -> None:
    rule = parse("fs.read")
    assert rule_matches(rule, "fs.read", None, False)
    assert rule_matches(rule, "fs.read", str(tmp_path / "anything"), True)
    assert rule_matches(rule, "fs.read", "/", True)
    assert rule_matches(parse("net.fetch"), "net.fetch", "example.com", False)


@pytest.mark.parametrize("scope", ["*", "**"])
def test_star_and_double_star_scopes_match_everything(scope: str, tmp_path: Path) -> None:
    rule = parse(f"fs.read:{scope}")
    assert rule_matches(rule, "fs.read", None, False)
    assert rule_matches(rule, "fs.read", "/", True)
    assert rule_matches(rule, "fs.read", str(tmp_path / "a" / "b"), True)
    assert rule_matches(parse(f"net.fetch:{scope}"), "net.fetch", "a.b.c", False)
    assert path_matches(scope, Path("/etc/passwd"))


def test_scoped_rule_does_not_match_a_request_without_scope() -> None:
    assert not rule_matches(parse("fs.read:/tmp/**"), "fs.read", None, False)
    assert not rule_matches(parse("apps.launch:firefox"), "apps.launch", None, False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home" / "user"
    for d in ("Documents/a/b", "Downloads/sub", "Documents2"):
        (h / d).mkdir(parents=True)
    return real(h)


@pytest.mark.parametrize("scope, rel, expected", [
    ("~/Documents/**", "Documents", True),          # ** covers zero segments
    ("~/Documents/**", "Documents/x.txt", True),
    ("~/Documents/**", "Documents/a/b/c.txt", True),
    ("~/Documents/**", "Documents2/x.txt", False),
    ("~/Documents/**", "Downloads/x.txt", False),
    ("~/Documents/**", "", False),
    ("~/Downloads/*", "Downloads/a", True),         # * is exactly one segment
    ("~/Downloads/*", "Downloads/sub", True),
    ("~/Downloads/*", "Downloads/sub/deeper", False),
    ("~/Downloads/*", "Downloads", False),
    ("~/**/b", "Documents/a/b", True),              # ** in the middle, any depth
    ("~/**/b", "b", True),                          # ... including zero
    ("~/**/b", "Documents/a/b/c", False),
    ("~/Documents/**/*.txt", "Documents/x.txt", True),
    ("~/Documents/**/*.txt", "Documents/a/b/x.txt", True),
    ("~/Documents/**/*.txt", "Documents/a/b/x.md", False),
    ("~/*/a/**", "Documents/a", True),
    ("~/*/a/**", "Documents/a/b/c", True),
    ("~/*/a/**", "a", False),
    ("~/**/**", "Documents", True),
    ("~/**/**", "", True),
    ("~", "", True),
    ("~", "Documents", False),
    ("~/Documents", "Documents", True),             # exact path, no glob
    ("~/Documents", "Documents/x", False),
    ("~/Doc?ments/**", "Documents/x", True),
    ("~/[D]ocuments/**", "Documents/x", True),
    ("~/Documents/*", "Documents/.hidden", True),   # fnmatchcase: * matches dotfiles too
])
def test_home_path_scopes(home: Path, scope: str, rel: str, expected: bool) -> None:
    target = resolve_path("~/" + rel if rel else "~", home=home)
    assert target == (home / rel if rel else home)
    assert path_matches(scope, target, home=home) is expected
    # The same through the rule matcher
    assert rule_matches(parse(f"fs.read:{scope}"), "fs.read", str(target), True,
                        home=home) is expected


def test_tilde_defaults_to_the_real_home() -> None:
    assert resolve_path("~") == real(Path.home())
    assert path_matches("~/**", resolve_path("~/x/y"))


def test_relative_rule_matches_nothing(home: Path) -> None:
    assert not path_matches("Documents/**", home / "Documents" / "x")
    assert not path_matches("Documents/**", Path("Documents/x"))
    assert not path_matches("~user/**", home / "x", home=home)


def test_root_rule_matches_only_root() -> None:
    assert path_matches("/", Path("/"))
    assert not path_matches("/", Path("/etc"))
    assert path_matches("/**", Path("/etc/passwd"))
    assert path_matches("/**", Path("/"))


def test_rule_with_dotdot_in_pattern_never_widens(tmp_path: Path) -> None:
    root = real(tmp_path)
    (root / "a").mkdir()
    # A `..` after a glob is kept as a pattern segment, which matches no resolved name.
    assert not path_matches(f"{root}/*/../**", root / "a")
    assert not path_matches(f"{root}/*/../**", root / "a" / "x")
    # A `..` in the literal prefix also stops the literal part: no match, not "the parent".
    assert not path_matches(f"{root}/a/../**", root / "x")


@pytest.mark.parametrize("rule, scope, expected", [
    ("*.wikipedia.org", "en.wikipedia.org", True),
    ("*.wikipedia.org", "de.m.wikipedia.org", True),
    ("*.wikipedia.org", "wikipedia.org", False),
    ("*.wikipedia.org", "en.wikipedia.org.evil.com", False),
    ("*.wikipedia.org", "evilwikipedia.org", False),
    ("appearance.*", "appearance.dark-mode", True),
    ("appearance.*", "sound.volume", False),
    ("appearance.dark-mode", "appearance.dark-mode", True),
    ("appearance.dark-mode", "appearance.dark-modeX", False),
    ("firefox", "firefox", True),
    ("firefox", "Firefox", False),  # case sensitive
    ("shared/family", "shared/family", True),
    ("shared/*", "shared/family", True),
])
def test_non_path_scopes_are_shell_globs(rule: str, scope: str, expected: bool) -> None:
    assert rule_matches(parse(f"x.y:{rule}"), "x.y", scope, False) is expected


# --------------------------------------------------------------------------- decide

def R(text: str, mode: str) -> tuple[Capability, Mode]:
    return parse(text), Mode(mode)


@pytest.mark.parametrize("default", list(Mode))
def test_default_when_no_rule_matches(default: Mode) -> None:
    assert decide([], "fs.read", "/x", True, default) == (default, None)
    rules = [R("net.fetch", "allow"), R("fs.read:/nowhere/**", "deny")]
    assert decide(rules, "fs.read", "/x", True, default) == (default, None)


def test_deny_beats_ask_beats_allow(tmp_path: Path) -> None:
    root = real(tmp_path)
    target = str(root / "secret" / "f")
    allow = R(f"fs.read:{root}/**", "allow")
    ask = R("fs.*", "ask")
    deny = R(f"fs.read:{root}/secret/**", "deny")
    assert decide([allow], "fs.read", target, True, Mode.DENY) == (Mode.ALLOW, f"fs.read:{root}/**")
    assert decide([allow, ask], "fs.read", target, True, Mode.DENY) == (Mode.ASK, "fs.*")
    assert decide([ask, allow], "fs.read", target, True, Mode.DENY) == (Mode.ASK, "fs.*")
    for order in ([allow, ask, deny], [deny, ask, allow], [ask, deny, allow]):
        assert decide(order, "fs.read", target, True, Mode.ALLOW) == (
            Mode.DENY, f"fs.read:{root}/secret/**")
    # Outside the denied subtree the deny rule does not match.
    assert decide([allow, deny], "fs.read", str(root / "public"), True, Mode.DENY)[0] is Mode.ALLOW


def test_a_matching_rule_overrides_the_default_even_if_weaker() -> None:
    # The default applies only when no rule matches: an allow rule beats default deny,
    # and also default ask (the default is not merged in as an extra rule).
    assert decide([R("process.list", "allow")], "process.list", None, False, Mode.ASK)[0] is Mode.ALLOW
    assert decide([R("process.list", "allow")], "process.list", None, False, Mode.DENY)[0] is Mode.ALLOW


# --------------------------------------------------------------------------- resolution and security

@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    base = real(tmp_path)
    root, outside = base / "root", base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (outside / "deep").mkdir(parents=True)
    (root / "a" / "f").write_text("inside")
    (outside / "f").write_text("secret")
    (root / "f").write_text("decoy")
    (root / "link_out").symlink_to(outside / "deep")         # dir symlink escaping
    (root / "flink").symlink_to(outside / "f")               # file symlink escaping
    (root / "rel_up").symlink_to("..")                       # relative, to base
    (root / "link_in").symlink_to("a")                       # stays inside
    (root / "dangling").symlink_to(outside / "missing")      # dangling, outside
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (base / "alias").symlink_to(root)                        # a symlinked parent
    return {"base": base, "root": root, "outside": outside}


def granted(root: Path, p: Path | str) -> bool:
    return path_matches(f"{root}/**", resolve_path(p))


def test_dotdot_cannot_escape(tree: dict[str, Path]) -> None:
    root, outside = tree["root"], tree["outside"]
    assert resolve_path(f"{root}/../outside/f") == outside / "f"
    assert not granted(root, f"{root}/../outside/f")
    assert not granted(root, f"{root}/a/../../outside/f")
    assert not granted(root, f"{root}/a/b/../../../outside")
    assert not granted(root, f"{root}/..")
    assert granted(root, f"{root}/a/../a/f")
    assert granted(root, f"{root}/a/b/..")
    assert granted(root, f"{root}/./a/./b/.")


def test_symlink_inside_pointing_outside_is_refused(tree: dict[str, Path]) -> None:
    root, outside = tree["root"], tree["outside"]
    assert resolve_path(root / "link_out") == outside / "deep"
    assert not granted(root, root / "link_out")
    assert not granted(root, root / "link_out" / "new-file")   # missing tail, still outside
    assert not granted(root, root / "link_out" / "x" / "y")
    assert not granted(root, root / "flink")
    assert not granted(root, root / "rel_up" / "outside" / "f")
    assert not granted(root, root / "rel_up")
    assert not granted(root, root / "dangling")                 # target need not exist
    assert resolve_path(root / "dangling") == outside / "missing"
    assert granted(root, root / "link_in" / "f")
    assert resolve_path(root / "link_in" / "f") == root / "a" / "f"


def test_dotdot_after_a_symlink_is_the_targets_parent(tree: dict[str, Path]) -> None:
    # `root/link_out/..` is `outside` for the OS (not `root`): the check must agree with
    # what a read of the same path would open.
    root, outside = tree["root"], tree["outside"]
    p = root / "link_out" / ".." / "f"
    assert p.read_text() == "secret"
    assert resolve_path(p) == outside / "f"
    assert not granted(root, p)
    assert resolve_path(p).read_text() == "secret"


def test_symlinked_parent_dir(tree: dict[str, Path]) -> None:
    base, root, outside = tree["base"], tree["root"], tree["outside"]
    # Through a symlinked parent into the granted dir: allowed, resolved to the real place.
    assert resolve_path(base / "alias" / "a" / "f") == root / "a" / "f"
    assert granted(root, base / "alias" / "a" / "f")
    # Through a symlinked parent, out again.
    assert not granted(root, base / "alias" / "link_out" / "z")
    assert not granted(root, base / "alias" / ".." / "outside")
    # A grant on the parent via its alias does not cover the alias's siblings.
    assert not path_matches(f"{base}/alias/**", outside / "f")


def test_symlink_loop_does_not_hang_and_does_not_escape(tree: dict[str, Path]) -> None:
    root = tree["root"]
    with pytest.raises(OSError) as info:
        (root / "loop1" / "x").read_text()
    assert info.value.errno == errno.ELOOP
    looped = resolve_path(root / "loop1" / "x")
    assert inside(looped, root)      # unopenable, but never reported outside-as-inside
    assert granted(root, root / "loop1" / "x")
    assert not granted(root, root / "loop1" / ".." / ".." / "outside" / "f")
    assert not granted(root, root / "loop2" / ".." / ".." / ".." / "etc")


def test_rule_whose_literal_prefix_is_a_symlink_still_matches(tree: dict[str, Path]) -> None:
    base, root, outside = tree["base"], tree["root"], tree["outside"]
    rule = f"{base}/alias/**"                       # alias -> root
    assert path_matches(rule, resolve_path(root / "a" / "f"))
    assert path_matches(rule, resolve_path(base / "alias" / "a" / "f"))
    assert path_matches(rule, root)
    assert not path_matches(rule, resolve_path(outside / "f"))
    assert not path_matches(rule, resolve_path(root / "link_out" / "x"))
    assert path_matches(f"{base}/alias/*/f", resolve_path(root / "a" / "f"))
    # An exact-file rule through a symlink
    assert path_matches(f"{root}/link_in/f", resolve_path(root / "a" / "f"))


def test_symlinked_home(tmp_path: Path) -> None:
    real_home = real(tmp_path) / "real-home"
    (real_home / "Docs").mkdir(parents=True)
    link_home = real(tmp_path) / "home-link"
    link_home.symlink_to(real_home)
    target = resolve_path("~/Docs/f", home=link_home)
    assert target == real_home / "Docs" / "f"
    assert path_matches("~/Docs/**", target, home=link_home)
    assert path_matches("~/Docs/**", target, home=real_home)
    assert not path_matches("~/Docs/**", real(tmp_path) / "elsewhere", home=link_home)


def test_glob_characters_in_home_are_literal(tmp_path: Path) -> None:
    base = real(tmp_path)
    home, other = base / "a[b]", base / "ab"
    for h in (home, other):
        (h / "x").mkdir(parents=True)
    assert path_matches("~/**", resolve_path("~/x", home=home), home=home)
    assert not path_matches("~/**", resolve_path(other / "x"), home=home)
    star_home = base / "*"
    star_home.mkdir()
    assert path_matches("~/**", star_home / "f", home=star_home)
    assert not path_matches("~/**", other / "f", home=star_home)


def test_glob_characters_in_a_resolved_symlink_prefix_are_literal(tmp_path: Path) -> None:
    base = real(tmp_path)
    (base / "data" / "*").mkdir(parents=True)
    (base / "data" / "private").mkdir()
    (base / "starlink").symlink_to(base / "data" / "*")
    rule = f"{base}/starlink/**"
    assert path_matches(rule, resolve_path(base / "starlink" / "f"))
    assert not path_matches(rule, resolve_path(base / "data" / "private" / "f"))


def test_relative_request_paths_resolve_from_the_working_dir(
        tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = tree["root"], tree["outside"]
    monkeypatch.chdir(root / "a")
    assert resolve_path("f") == root / "a" / "f"
    assert resolve_path("../link_out/../f") == outside / "f"
    assert granted(root, "b/../f")
    assert not granted(root, "../../outside/f")
    assert not granted(root, "../link_out")


def test_resolve_path_accepts_pathlike_and_keeps_missing_tails(tmp_path: Path) -> None:
    base = real(tmp_path)
    assert resolve_path(base / "no" / "such" / "file") == base / "no" / "such" / "file"
    assert resolve_path(str(base) + "//x///y/") == base / "x" / "y"
    assert isinstance(resolve_path(str(base)), Path)


# --------------------------------------------------------------------------- properties

SEGMENTS = ["..", ".", "a", "b", "f", "new", "link_in", "link_out", "link_up", "link_abs_in",
            "link_back", "loop1", "dangling", "deep"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = real(tmp_path_factory.mktemp("caps-world"))
    root, outside = base / "root", base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (outside / "deep" / "b").mkdir(parents=True)
    (root / "a" / "f").write_text("in")
    (outside / "f").write_text("out")
    for d in (root, root / "a", outside, outside / "deep"):
        (d / "link_up").symlink_to("..")
        (d / "link_back").symlink_to(root / "a")
        (d / "link_out").symlink_to(outside / "deep")
        (d / "link_in").symlink_to("b" if (d / "b").exists() else ".")
        (d / "link_abs_in").symlink_to(root)
        (d / "dangling").symlink_to(outside / "missing" / "x")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (base / "root-alias").symlink_to(root)
    return {"base": base, "root": root, "outside": outside}


def reference_resolve(path: str) -> str | None:
    """An independent walk of the path with lstat/readlink; None on a symlink loop."""
    todo = [c for c in path.split("/")][::-1]
    done: list[str] = []
    hops = 0
    while todo:
        c = todo.pop()
        if c in ("", "."):
            continue
        if c == "..":
            if done:
                done.pop()
            continue
        here = "/" + "/".join(done + [c])
        if os.path.islink(here):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            todo.extend(target.split("/")[::-1])
        else:
            done.append(c)
    return "/" + "/".join(done)


@PROPS
@given(segs=st.lists(st.sampled_from(SEGMENTS), max_size=8),
       start=st.sampled_from(["root", "outside", "root-alias", "base"]))
def test_property_scope_holds_iff_really_inside(world: dict[str, Path], segs: list[str],
                                                 start: str) -> None:
    root = world["root"]
    origin = world["base"] if start == "base" else world["base"] / start
    p = "/".join([str(origin), *segs])
    resolved = resolve_path(p)
    assert resolved.is_absolute()
    assert ".." not in resolved.parts and "." not in resolved.parts
    expected = reference_resolve(p)
    if expected is not None:  # no loop: resolution agrees with an independent walk
        assert str(resolved) == expected
        if os.path.exists(p):
            assert os.path.samefile(p, resolved)
    really_inside = inside(resolved, root)
    assert path_matches(f"{root}/**", resolved) is really_inside
    # The same grant written through a symlinked prefix or `~` gives the same answer.
    assert path_matches(f"{world['base']}/root-alias/**", resolved) is really_inside
    assert path_matches("~/root/**", resolved, home=world["base"]) is really_inside
    assert path_matches("~/root-alias/**", resolved, home=world["base"]) is really_inside


NAME_SEGS = ["a", "b", "c", "ab", "ba", ".x"]
PAT_SEGS = ["a", "b", "c", "*", "**", "a*", "*b", "?", "??", "[ab]", ".x"]


def reference_regex(pattern: list[str]) -> re.Pattern[str]:
    out = []
    for seg in pattern:
        if seg == "**":
            out.append("(?:/[^/]+)*")
            continue
        rx, i = "", 0
        while i < len(seg):
            ch = seg[i]
            if ch == "*":
                rx += "[^/]*"
            elif ch == "?":
                rx += "[^/]"
            elif ch == "[":
                end = seg.index("]", i)
                rx += "[" + re.escape(seg[i + 1:end]) + "]"
                i = end
            else:
                rx += re.escape(ch)
            i += 1
        out.append("/" + rx)
    return re.compile("".join(out))


@PROPS
@given(pattern=st.lists(st.sampled_from(PAT_SEGS), max_size=7),
       path=st.lists(st.sampled_from(NAME_SEGS), max_size=7))
def test_property_segment_globs_match_a_regex_reference(
        world: dict[str, Path], pattern: list[str], path: list[str]) -> None:
    expected = reference_regex(pattern).fullmatch("".join("/" + s for s in path)) is not None
    assert _match_segments(pattern, path) is expected
    # And end to end under a real directory (its literal prefix is resolved).
    base = world["base"]
    scope = "/".join([str(base / "g"), *pattern])
    # A pattern that starts literally is part of the literal prefix; both agree anyway.
    target = base.joinpath("g", *path)
    assert path_matches(scope, target) is expected


@given(depth=st.integers(min_value=0, max_value=6))
@settings(max_examples=20, deadline=None)
def test_property_double_star_covers_every_depth(depth: int) -> None:
    assert _match_segments(["r", "**"], ["r"] + ["x"] * depth)
    assert _match_segments(["r", "**", "z"], ["r"] + ["x"] * depth + ["z"])
    assert _match_segments(["r", "*"], ["r"] + ["x"] * depth) is (depth == 1)


RULE_NAMES = ["fs.read", "fs.write", "fs.*", "*.read", "net.fetch", "*"]
RULE_SCOPES = [None, "*", "**", "/r/**", "/r/*", "/r/a/**", "/r/a", "/s/**", "/**/a"]
REQ_NAMES = ["fs.read", "fs.write", "net.fetch"]
REQ_SCOPES = [None, "/r", "/r/a", "/r/a/b", "/s/a", "/t"]


@PROPS
@given(rules=st.lists(st.tuples(st.sampled_from(RULE_NAMES), st.sampled_from(RULE_SCOPES),
                                st.sampled_from(list(Mode))), max_size=8),
       name=st.sampled_from(REQ_NAMES), scope=st.sampled_from(REQ_SCOPES),
       default=st.sampled_from(list(Mode)), seed=st.integers(0, 2**32 - 1))
def test_property_decide_is_order_independent(rules: list[tuple[str, str | None, Mode]],
                                              name: str, scope: str | None, default: Mode,
                                              seed: int) -> None:
    parsed = [(Capability(n, s), m) for n, s, m in rules]
    mode, why = decide(parsed, name, scope, True, default)
    shuffled = parsed[:]
    random.Random(seed).shuffle(shuffled)
    mode2, why2 = decide(shuffled, name, scope, True, default)
    assert mode2 is mode
    # Reference: the strongest mode among matching rules, else the default.
    matching = [(c, m) for c, m in parsed if rule_matches(c, name, scope, True)]
    strength = {Mode.ALLOW: 0, Mode.ASK: 1, Mode.DENY: 2}
    if not matching:
        assert (mode, why) == (default, None) and why2 is None
    else:
        assert mode is max((m for _, m in matching), key=strength.__getitem__)
        for reason in (why, why2):  # the named rule matches and carries that mode
            assert (parse(reason), mode) in matching
