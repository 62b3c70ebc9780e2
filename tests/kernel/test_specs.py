"""kernel.specs: agent specs (TOML) and the registry of built-in and user specs."""
from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import pytest

from kernel.capabilities import Mode
from kernel.specs import AgentSpec, SpecError, SpecRegistry, parse_spec

MINIMAL = 'name = "{name}"\ninstructions = "Do things."\n'

BACKGROUND = """
name = "tidy-downloads"
description = "Sorts the Downloads folder"
instructions = "Move files into folders by type."
priority = "background"
weight = 0.5
max_steps = 40
deadline_seconds = 300

[quotas]
tokens_per_minute = 2000

[[grants]]
capability = "fs.read:~/Downloads/**"

[[grants]]
capability = "fs.write:~/Downloads/**"
mode = "ask"

[[triggers]]
kind = "interval"
seconds = 3600
"""


def builtin_text(name: str) -> str:
    return (resources.files("resources") / "agents" / f"{name}.toml").read_text(encoding="utf-8")


def test_builtin_assistant_spec() -> None:
    spec = parse_spec(builtin_text("assistant"), "assistant.toml")
    assert spec.name == "assistant"
    assert spec.priority == "interactive"
    assert spec.default_mode is None
    assert spec.default is Mode.ASK
    assert spec.grants == []
    assert spec.instructions.strip()


def test_background_spec_defaults_to_deny() -> None:
    spec = parse_spec(BACKGROUND)
    assert spec.priority == "background"
    assert spec.default is Mode.DENY
    assert [(g.capability, g.mode) for g in spec.grants] == [
        ("fs.read:~/Downloads/**", Mode.ALLOW), ("fs.write:~/Downloads/**", Mode.ASK)]
    assert spec.quotas.tokens_per_minute == 2000 and spec.quotas.tool_calls_per_minute is None
    assert spec.triggers[0].kind == "interval"
    assert spec.triggers[0].model_extra == {"seconds": 3600}
    assert spec.weight == 0.5 and spec.max_steps == 40 and spec.deadline_seconds == 300


@pytest.mark.parametrize("priority, default", [("interactive", Mode.ASK), ("normal", Mode.DENY),
                                               ("background", Mode.DENY), ("idle", Mode.DENY)])
def test_default_follows_priority(priority: str, default: Mode) -> None:
    spec = parse_spec(MINIMAL.format(name="x") + f'priority = "{priority}"\n')
    assert spec.default is default


def test_explicit_default_mode_wins() -> None:
    spec = parse_spec(MINIMAL.format(name="x") + 'priority = "background"\ndefault_mode = "ask"\n')
    assert spec.default is Mode.ASK
    spec = parse_spec(MINIMAL.format(name="x") + 'priority = "interactive"\ndefault_mode = "deny"\n')
    assert spec.default is Mode.DENY


def test_minimal_spec_defaults() -> None:
    spec = parse_spec(MINIMAL.format(name="x"))
    assert isinstance(spec, AgentSpec)
    assert spec.priority == "normal" and spec.max_steps == 20 and spec.max_tokens == 4096
    assert spec.model is None and spec.grants == [] and spec.triggers == []


def test_grant_capability_is_normalised() -> None:
    spec = parse_spec(MINIMAL.format(name="x") + '[[grants]]\ncapability = "  net.fetch  "\n')
    assert spec.grants[0].capability == "net.fetch"


@pytest.mark.parametrize("text, origin, needles", [
    ('name = "x"\ninstructions = ', "bad.toml", ["bad.toml", "not valid TOML"]),
    ('name = "x"\n[[[', "<spec>", ["<spec>", "not valid TOML"]),
    (MINIMAL.format(name="Bad Name"), "s.toml", ["s.toml", "name", "pattern"]),
    (MINIMAL.format(name="a" * 65), "s.toml", ["name", "64"]),
    (MINIMAL.format(name="x") + "colour = 'red'\n", "s.toml", ["colour", "Extra inputs"]),
    (MINIMAL.format(name="x") + "[quotas]\nfoo = 1\n", "s.toml", ["quotas.foo"]),
    (MINIMAL.format(name="x") + "[[grants]]\ncapability = 'FS.read'\n", "s.toml",
     ["grants.0.capability", "'FS.read' is not a capability"]),
    (MINIMAL.format(name="x") + "[[grants]]\ncapability = 'fs.read:'\n", "s.toml",
     ["grants.0.capability", "empty scope"]),
    (MINIMAL.format(name="x") + "[[grants]]\ncapability = 'fs.read'\nmode = 'sometimes'\n",
     "s.toml", ["grants.0.mode"]),
    (MINIMAL.format(name="x") + "priority = 'urgent'\n", "s.toml", ["priority"]),
    (MINIMAL.format(name="x") + "max_steps = 0\n", "s.toml", ["max_steps"]),
    (MINIMAL.format(name="x") + "[[triggers]]\nkind = 'whenever'\n", "s.toml", ["triggers.0.kind"]),
    ('name = "x"\n', "s.toml", ["instructions", "Field required"]),
])
def test_invalid_specs_name_the_problem(text: str, origin: str, needles: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, origin)
    msg = str(info.value)
    assert msg.startswith(origin)
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_several_problems_are_all_named() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec('name = "Bad"\nextra = 1\n')
    msg = str(info.value)
    assert "name:" in msg and "extra:" in msg and "instructions:" in msg


def test_registry_has_the_builtin_assistant(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    spec = reg.get("assistant")
    assert spec.priority == "interactive" and spec.default is Mode.ASK
    assert reg.is_builtin("assistant")
    assert "assistant" in [s.name for s in reg.all()]
    d = reg.describe(spec)
    assert d["builtin"] is True and d["default_mode"] == "ask" and d["priority"] == "interactive"


def test_registry_get_unknown(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no agent named 'ghost'"):
        SpecRegistry(tmp_path).get("ghost")


def test_add_writes_into_the_user_dir(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    spec = reg.add(BACKGROUND)
    assert spec.name == "tidy-downloads"
    target = tmp_path / "tidy-downloads.toml"
    assert target.read_text(encoding="utf-8") == BACKGROUND
    assert [p.name for p in tmp_path.iterdir()] == ["tidy-downloads.toml"]  # no temp left
    assert reg.get("tidy-downloads") == spec
    assert not reg.is_builtin("tidy-downloads")
    d = reg.describe(spec)
    assert d["builtin"] is False and d["default_mode"] == "deny" and d["triggers"] == ["interval"]
    # a fresh registry finds it on disk
    assert SpecRegistry(tmp_path).get("tidy-downloads") == spec


def test_add_replaces_an_earlier_user_spec(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    reg.add(MINIMAL.format(name="x"))
    reg.add(MINIMAL.format(name="x").replace("Do things.", "Do other things."))
    assert reg.get("x").instructions == "Do other things."
    assert SpecRegistry(tmp_path).get("x").instructions == "Do other things."


def test_add_invalid_spec_writes_nothing(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    with pytest.raises(SpecError):
        reg.add(MINIMAL.format(name="x") + "bogus = true\n")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SpecError):
        reg.get("x")


def test_user_spec_overrides_builtin(tmp_path: Path) -> None:
    override = MINIMAL.format(name="assistant") + 'priority = "normal"\n'
    (tmp_path / "assistant.toml").write_text(override, encoding="utf-8")
    reg = SpecRegistry(tmp_path)
    spec = reg.get("assistant")
    assert spec.instructions == "Do things." and spec.default is Mode.DENY
    assert [s.name for s in reg.all()].count("assistant") == 1


def test_add_overrides_builtin_at_once(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    reg.add(MINIMAL.format(name="assistant"))
    assert reg.get("assistant").instructions == "Do things."
    assert (tmp_path / "assistant.toml").exists()
    reg.reload()
    assert reg.get("assistant").instructions == "Do things."


def test_user_file_name_does_not_matter_the_spec_name_does(tmp_path: Path) -> None:
    (tmp_path / "whatever.toml").write_text(MINIMAL.format(name="helper"), encoding="utf-8")
    assert SpecRegistry(tmp_path).get("helper").name == "helper"


def test_invalid_user_spec_is_skipped_and_logged(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.toml").write_text("name = ", encoding="utf-8")
    (tmp_path / "ok.toml").write_text(MINIMAL.format(name="ok"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a spec", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="kernel.specs"):
        reg = SpecRegistry(tmp_path)
    assert reg.get("ok").name == "ok"
    assert reg.get("assistant").priority == "interactive"  # built-ins unaffected
    assert any("broken.toml" in r.getMessage() for r in caplog.records)


def test_all_is_sorted_by_name(tmp_path: Path) -> None:
    reg = SpecRegistry(tmp_path)
    for n in ("zeta", "alpha", "mid"):
        reg.add(MINIMAL.format(name=n))
    names = [s.name for s in reg.all()]
    assert names == sorted(names)
    assert {"zeta", "alpha", "mid", "assistant"} <= set(names)
