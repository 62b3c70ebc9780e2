"""Agent specs: agents are data (TOML), validated here and kept in a registry."""
from __future__ import annotations

import logging
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kernel.capabilities import Mode, parse

log = logging.getLogger(__name__)

Priority = Literal["interactive", "normal", "background", "idle"]


class SpecError(ValueError):
    pass


class Quotas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens_per_minute: int | None = Field(default=None, gt=0)
    tool_calls_per_minute: int | None = Field(default=None, gt=0)


class GrantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capability: str
    mode: Mode = Mode.ALLOW

    @field_validator("capability")
    @classmethod
    def _valid(cls, v: str) -> str:
        return str(parse(v))


class TriggerSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["schedule", "interval", "file", "app", "system", "startup", "message"]


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9-]+$", max_length=64)
    description: str = ""
    instructions: str
    model: str | None = None
    priority: Priority = "normal"
    weight: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=20, gt=0, le=500)
    max_tokens: int = Field(default=4096, gt=0)
    # The agent's answers depend only on its request (a lookup, a classifier): identical
    # requests are answered from the kernel's response cache instead of the provider.
    deterministic: bool = False
    deadline_seconds: float | None = Field(default=None, gt=0)
    default_mode: Mode | None = None
    quotas: Quotas = Quotas()
    grants: list[GrantSpec] = []
    triggers: list[TriggerSpec] = []

    @property
    def default(self) -> Mode:
        """No matching rule: ask for the interactive assistant, deny for background work."""
        if self.default_mode is not None:
            return self.default_mode
        return Mode.ASK if self.priority == "interactive" else Mode.DENY


def parse_spec(text: str, origin: str = "<spec>") -> AgentSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML: {exc}") from None
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}"
                             for e in exc.errors())
        raise SpecError(f"{origin}: {problems}") from None


class SpecRegistry:
    """Built-in specs from resources/agents, overridden by the user's in config/agents."""

    def __init__(self, user_dir: Path) -> None:
        self._user_dir = user_dir
        self._specs: dict[str, AgentSpec] = {}
        self._builtin: set[str] = set()
        self.reload()

    def reload(self) -> None:
        specs: dict[str, AgentSpec] = {}
        builtin = resources.files("resources") / "agents"
        for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                spec = parse_spec(entry.read_text(encoding="utf-8"), entry.name)
                specs[spec.name] = spec
        self._builtin = set(specs)
        for path in sorted(self._user_dir.glob("*.toml")):
            try:
                spec = parse_spec(path.read_text(encoding="utf-8"), str(path))
            except SpecError:
                log.exception("skipping invalid agent spec %s", path)
                continue
            specs[spec.name] = spec
        self._specs = specs

    def get(self, name: str) -> AgentSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise SpecError(f"no agent named {name!r}; `deskpilot agents list` shows them") from None

    def all(self) -> list[AgentSpec]:
        return [self._specs[n] for n in sorted(self._specs)]

    def is_builtin(self, name: str) -> bool:
        return name in self._builtin

    def add(self, text: str) -> AgentSpec:
        spec = parse_spec(text)
        target = self._user_dir / f"{spec.name}.toml"
        tmp = target.with_suffix(".toml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        self._specs[spec.name] = spec
        return spec

    def describe(self, spec: AgentSpec) -> dict[str, Any]:
        return {"name": spec.name, "description": spec.description, "priority": spec.priority,
                "model": spec.model, "weight": spec.weight, "max_steps": spec.max_steps,
                "builtin": self.is_builtin(spec.name),
                "triggers": [t.kind for t in spec.triggers],
                "default_mode": spec.default.value}
