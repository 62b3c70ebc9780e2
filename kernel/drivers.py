"""The driver API: how `tools/` packages declare host operations the kernel can guard.

A driver is a class with `name` and methods marked `@operation(...)`. Each operation
names the capabilities it needs as templates over its own parameters:

    class FilesDriver(Driver):
        name = "files"

        @operation("fs.read:{src}", "fs.write:{dst}")
        def copy(self, src: Path, dst: Annotated[Path, Field(description="Target")]) -> str:
            '''Copy a file or folder.'''

Invariants the kernel relies on:
- Parameters annotated `Path` are resolved by the kernel (``~`` expanded, made
  absolute, ``..`` and symlinks resolved) *before* the capability check, and the
  operation receives exactly the resolved path that was checked.
- The model-facing JSON schema is derived from the signature alone; nothing is
  written twice.
- Operations are synchronous and run in a worker thread; they raise `ToolError`
  for failures the model should see (other exceptions are reported too, but logged
  as driver bugs).

Drivers are found through the ``deskpilot.drivers`` entry-point group, so the kernel
never imports one by name.
"""
from __future__ import annotations

import inspect
import logging
import string
import typing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deskpilot.drivers"


class ToolError(Exception):
    """A failure the model should read, e.g. 'file not found'."""


class Need(NamedTuple):
    """One capability an operation needs, with its arguments filled in.

    `subtree`: the template ended in `/**` - the operation acts on everything below a
    folder (copy, move, delete), so every existing descendant must be allowed too, not
    just the folder's own path.
    """

    name: str
    scope: str | None
    is_path: bool
    subtree: bool = False

    def text(self) -> str:
        if self.scope is None:
            return self.name
        return f"{self.name}:{self.scope}" + ("/**" if self.subtree else "")


@dataclass(frozen=True)
class Operation:
    """One guarded operation: the unit the model sees as a tool."""

    driver: str
    method: str
    needs: tuple[str, ...]
    description: str
    args_model: type[BaseModel]
    path_params: frozenset[str]
    func: Callable[..., Any] = field(repr=False)

    @property
    def tool_name(self) -> str:
        # The Messages API allows [a-zA-Z0-9_-]{1,64} in tool names, so no dots.
        return f"{self.driver}_{self.method}"

    def input_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def tool_definition(self) -> dict[str, Any]:
        return {"name": self.tool_name, "description": self.description,
                "input_schema": self.input_schema()}

    def parse_args(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validate model-supplied arguments; raises `ToolError` with a readable reason."""
        if not isinstance(raw, dict):
            raise ToolError(f"{self.tool_name}: arguments must be a JSON object")
        try:
            parsed = self.args_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors())
            raise ToolError(f"{self.tool_name}: bad arguments: {problems}") from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    def required_capabilities(self, args: dict[str, Any]) -> list[Need]:
        """The needs of this call, its arguments filled in."""
        out = []
        for template in self.needs:
            name, _, scope_tpl = template.partition(":")
            if not scope_tpl:
                out.append(Need(name, None, False))
                continue
            fields = [f for _, f, _, _ in string.Formatter().parse(scope_tpl) if f]
            is_path = any(f in self.path_params for f in fields)
            subtree = is_path and scope_tpl.endswith("/**")
            if subtree:
                scope_tpl = scope_tpl[:-3]
            scope = scope_tpl.format(**{k: str(v) for k, v in args.items()})
            out.append(Need(name, scope, is_path, subtree))
        return out


def operation(*needs: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a driver method as an operation needing the given capability templates."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__deskpilot_needs__ = tuple(needs)  # type: ignore[attr-defined]
        return func

    return mark


class Driver:
    """Base class of drivers. Subclasses set `name` and define `@operation` methods."""

    name: ClassVar[str] = ""

    def operations(self) -> list[Operation]:
        ops = []
        for attr in sorted(dir(type(self))):
            func = getattr(type(self), attr)
            needs = getattr(func, "__deskpilot_needs__", None)
            if needs is None:
                continue
            ops.append(_build_operation(self, attr, func, needs))
        return ops


def _build_operation(driver: Driver, attr: str, func: Callable[..., Any],
                     needs: tuple[str, ...]) -> Operation:
    hints = typing.get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    path_params: set[str] = set()
    for pname, param in inspect.signature(func).parameters.items():
        if pname == "self":
            continue
        ann = hints.get(pname, str)
        base = typing.get_args(ann)[0] if typing.get_origin(ann) is typing.Annotated else ann
        if base is Path:
            path_params.add(pname)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (ann, default)
    for template in needs:
        _, _, scope = template.partition(":")
        for _, fname, _, _ in string.Formatter().parse(scope):
            if fname and fname not in fields:
                raise TypeError(f"{driver.name}.{attr}: capability {template!r} names "
                                f"unknown parameter {fname!r}")
    model = create_model(  # type: ignore[call-overload]
        f"{driver.name}_{attr}_args", __config__=ConfigDict(extra="forbid"), **fields)
    doc = inspect.cleandoc(func.__doc__ or attr).strip()
    return Operation(driver=driver.name, method=attr, needs=needs, description=doc,
                     args_model=model, path_params=frozenset(path_params),
                     func=getattr(driver, attr))


def discover_drivers() -> list[Driver]:
    """Instantiate every installed driver; a driver that fails to load is logged and skipped."""
    drivers: list[Driver] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            drivers.append(cls())
        except Exception:  # a broken driver must not take the kernel down
            log.exception("driver %s failed to load; its tools are unavailable", ep.name)
    return drivers


class DriverRegistry:
    """Operations of all loaded drivers, by tool name. A driver whose declarations are
    broken is logged and left out, like a failing addon in mitmproxy's manager."""

    def __init__(self, drivers: list[Driver]) -> None:
        self._ops: dict[str, Operation] = {}
        for driver in drivers:
            try:
                ops = driver.operations()
            except Exception:
                log.exception("driver %s declares bad operations; left out", driver.name)
                continue
            for op in ops:
                self._ops[op.tool_name] = op

    def get(self, tool_name: str) -> Operation | None:
        return self._ops.get(tool_name)

    def definitions(self) -> list[dict[str, Any]]:
        return [self._ops[name].tool_definition() for name in sorted(self._ops)]

    def names(self) -> list[str]:
        return sorted(self._ops)
