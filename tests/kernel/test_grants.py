"""kernel.grants: the per-agent rule table, read at every check."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernel.capabilities import BadCapability, Capability, Mode
from kernel.db import Database
from kernel.grants import GrantStore


@pytest.fixture
def store(db: Database) -> GrantStore:
    return GrantStore(db)


def caps(store: GrantStore, agent: str | None = None) -> list[tuple[str, str, str, str]]:
    return [(r["agent"], r["capability"], r["mode"], r["source"]) for r in store.listing(agent)]


def test_set_list_and_rules(store: GrantStore) -> None:
    assert store.set("bob", "fs.read:/tmp/**", "allow") == {
        "agent": "bob", "capability": "fs.read:/tmp/**", "mode": "allow"}
    store.set("bob", "net.fetch", Mode.DENY)
    store.set("alice", "process.list", "ask", source="cli")
    assert caps(store) == [
        ("alice", "process.list", "ask", "cli"),
        ("bob", "fs.read:/tmp/**", "allow", "user"),
        ("bob", "net.fetch", "deny", "user"),
    ]
    assert caps(store, "alice") == [("alice", "process.list", "ask", "cli")]
    assert caps(store, "nobody") == []
    assert sorted(store.rules("bob"), key=lambda r: r[0].name) == [
        (Capability("fs.read", "/tmp/**"), Mode.ALLOW), (Capability("net.fetch"), Mode.DENY)]
    assert all(isinstance(r["updated"], float) for r in store.listing())


def test_set_replaces_the_mode_of_the_same_capability(store: GrantStore) -> None:
    store.set("bob", "fs.read:/tmp/**", "allow")
    store.set("bob", "fs.read:/tmp/**", "deny", source="cli")
    assert caps(store, "bob") == [("bob", "fs.read:/tmp/**", "deny", "cli")]
    # the capability text is normalised, so blanks don't make a second row
    store.set("bob", "  fs.read:/tmp/**  ", "ask")
    assert caps(store, "bob") == [("bob", "fs.read:/tmp/**", "ask", "user")]
    # grants are per agent
    store.set("alice", "fs.read:/tmp/**", "allow")
    assert caps(store, "bob")[0][2] == "ask"


def test_revoke(store: GrantStore) -> None:
    store.set("bob", "fs.read:/tmp/**", "allow")
    store.set("alice", "fs.read:/tmp/**", "allow")
    assert store.revoke("bob", " fs.read:/tmp/** ") is True
    assert caps(store, "bob") == []
    assert caps(store, "alice") != []
    assert store.revoke("bob", "fs.read:/tmp/**") is False
    assert store.revoke("bob", "never.granted") is False


@pytest.mark.parametrize("bad", ["", "FS.read", "fs.read:", "fs read", "../x"])
def test_bad_capability_is_refused(store: GrantStore, bad: str) -> None:
    with pytest.raises(BadCapability):
        store.set("bob", bad, "allow")
    with pytest.raises(BadCapability):
        store.revoke("bob", bad)
    with pytest.raises(BadCapability):
        store.seed("bob", [("fs.read", Mode.ALLOW), (bad, Mode.ALLOW)])
    assert caps(store) == []  # seeding is all or nothing


def test_bad_mode_is_refused(store: GrantStore) -> None:
    with pytest.raises(ValueError):
        store.set("bob", "fs.read", "maybe")
    assert caps(store) == []


def test_seed_installs_once(store: GrantStore) -> None:
    grants = [("fs.read:~/Documents/**", Mode.ALLOW), ("net.fetch", Mode.ASK)]
    store.seed("bot", grants)
    assert caps(store, "bot") == [
        ("bot", "fs.read:~/Documents/**", "allow", "spec"),
        ("bot", "net.fetch", "ask", "spec"),
    ]
    store.seed("bot", grants)
    assert len(caps(store, "bot")) == 2


def test_revoked_seeded_grant_is_not_readded(store: GrantStore) -> None:
    store.seed("bot", [("fs.read:/data/**", Mode.ALLOW), ("net.fetch", Mode.ALLOW)])
    assert store.revoke("bot", "fs.read:/data/**")
    store.seed("bot", [("fs.read:/data/**", Mode.ALLOW), ("net.fetch", Mode.ALLOW)])
    assert caps(store, "bot") == [("bot", "net.fetch", "allow", "spec")]


def test_user_change_to_a_seeded_grant_sticks(store: GrantStore) -> None:
    store.seed("bot", [("net.fetch", Mode.ALLOW)])
    store.set("bot", "net.fetch", "deny")
    store.seed("bot", [("net.fetch", Mode.ALLOW)])
    assert caps(store, "bot") == [("bot", "net.fetch", "deny", "user")]


def test_seed_does_not_override_an_existing_user_grant(store: GrantStore) -> None:
    store.set("bot", "net.fetch", "deny")
    store.seed("bot", [("net.fetch", Mode.ALLOW), ("process.list", "ask")])
    assert caps(store, "bot") == [("bot", "net.fetch", "deny", "user"),
                                  ("bot", "process.list", "ask", "spec")]


def test_a_new_spec_grant_is_seeded_later(store: GrantStore) -> None:
    store.seed("bot", [("net.fetch", Mode.ALLOW)])
    store.seed("bot", [("net.fetch", Mode.ALLOW), ("process.list", Mode.ALLOW)])
    assert [c for _, c, _, _ in caps(store, "bot")] == ["net.fetch", "process.list"]


def test_seed_survives_a_new_store_on_the_same_db(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    db1 = Database(path)
    GrantStore(db1).seed("bot", [("net.fetch", Mode.ALLOW)])
    GrantStore(db1).revoke("bot", "net.fetch")
    db1.close()
    db2 = Database(path)
    GrantStore(db2).seed("bot", [("net.fetch", Mode.ALLOW)])
    assert GrantStore(db2).listing("bot") == []
    db2.close()


def test_check_reads_current_rows(store: GrantStore, tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path)
    target = f"{root}/docs/a.txt"
    check = lambda: store.check("bob", "fs.read", target, True, Mode.DENY)  # noqa: E731
    assert check() == (Mode.DENY, None)
    store.set("bob", f"fs.read:{root}/**", "allow")
    assert check() == (Mode.ALLOW, f"fs.read:{root}/**")
    store.set("bob", f"fs.read:{root}/docs/*", "ask")
    assert check() == (Mode.ASK, f"fs.read:{root}/docs/*")
    store.set("bob", f"fs.read:{root}/docs/*", "deny")
    assert check() == (Mode.DENY, f"fs.read:{root}/docs/*")
    assert store.revoke("bob", f"fs.read:{root}/docs/*")
    assert check() == (Mode.ALLOW, f"fs.read:{root}/**")
    assert store.revoke("bob", f"fs.read:{root}/**")
    assert check() == (Mode.DENY, None)
    assert store.check("bob", "fs.read", target, True, Mode.ASK) == (Mode.ASK, None)


def test_check_is_per_agent_and_uses_home(store: GrantStore, tmp_path: Path) -> None:
    home = Path(os.path.realpath(tmp_path))
    store.set("alice", "fs.read:~/**", "allow")
    target = str(home / "x")
    assert store.check("alice", "fs.read", target, True, Mode.DENY, home=home)[0] is Mode.ALLOW
    assert store.check("bob", "fs.read", target, True, Mode.DENY, home=home)[0] is Mode.DENY


def test_revoke_through_another_store_is_seen_by_the_next_check(db: Database) -> None:
    # e.g. the CLI's connection and the kernel's: no cache in between
    kernel_side, cli_side = GrantStore(db), GrantStore(db)
    cli_side.set("bob", "process.kill", "allow")
    assert kernel_side.check("bob", "process.kill", None, False, Mode.DENY)[0] is Mode.ALLOW
    cli_side.revoke("bob", "process.kill")
    assert kernel_side.check("bob", "process.kill", None, False, Mode.DENY)[0] is Mode.DENY
