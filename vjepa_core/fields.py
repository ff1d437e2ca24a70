"""Options declared once: a dataclass field carries its help, its bounds, its history and its flag.

A spec (`vjepa_core.spec.RunSpec`, `vjepa_core.pretrain.spec.PretrainSpec`), the execution options
(`vjepa_core.spec.ExecOptions`) and the demo's options (`demo.options.DemoOptions`) declare each option as
`name: type = option(default, Option("help", ...))`. Validation (`settle`), ids (`identity`, `digest`), command
lines (`command_line`), the runner's and the demo's flags and the docs' options tables are derived from the
fields, as transformers derives a command line from `TrainingArguments` with `HfArgumentParser`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shlex
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from vjepa_core.errors import UserError, did_you_mean

METADATA_KEY = "vjepa_option"
Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class Option:
    """What a field declares besides its type and default.

    `added`: when the field was added after ids were first handed out (a date); such a field counts in
    the id only when it differs from its default. Bounds apply to numbers (None passes): `at_least` and
    `at_most` include the bound, `above` and `below` exclude it.

    How the field looks on a command line: `flag` when it is not `--<field-name>` (`--workers` sets
    num_workers), `short` a one-letter alias, `negated` for a flag that turns the field off (`--quiet` for
    progress), `picked` for a flag that is unset by default because the command picks the value (the text
    `--help` shows, e.g. "half the CPUs"), `on_cli=False` for a field that only code sets.
    """

    help: str
    added: str | None = None
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    flag: str | None = None
    short: str | None = None
    negated: bool = False
    picked: str | None = None
    on_cli: bool = True

    def bounds_error(self, name: str, value: Any) -> str | None:
        """The message for a number outside the bounds, else None."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        lower = [(b, op) for b, op in ((self.at_least, "at least"), (self.above, ">")) if b is not None]
        upper = [(b, op) for b, op in ((self.at_most, "at most"), (self.below, "<")) if b is not None]
        if all(_holds(value, b, op) for b, op in [*lower, *upper]):
            return None
        if not (lower and upper):
            bound, words = (lower or upper)[0]
            return f"{name} must be {words} {bound:g}, got {value}"
        (low, low_op), (high, high_op) = lower[0], upper[0]
        return (f"{name} is out of range: {value} (expected {low:g} {'<=' if low_op == 'at least' else '<'} {name} "
                f"{'<=' if high_op == 'at most' else '<'} {high:g})")


def _holds(value: float, bound: float, op: str) -> bool:
    return {"at least": value >= bound, ">": value > bound, "at most": value <= bound, "<": value < bound}[op]


def option(default: Any, declaration: Option) -> Any:
    """A dataclass field with `default` that carries `declaration`."""
    return dataclasses.field(default=default, metadata={METADATA_KEY: declaration})


def declared(cls: type) -> dict[str, Option]:
    """Field name -> its declaration, in field order; every field of a spec must have one."""
    return {f.name: f.metadata[METADATA_KEY] for f in dataclasses.fields(cls)}


def defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """Resolved field types; cached, because resolving string annotations is slow and a matrix builds hundreds
    of specs."""
    return typing.get_type_hints(cls)


def allowed(hint: Any) -> tuple[Any, ...]:
    """The types (and literal values) a hint admits: `int | None` -> (int, NoneType)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(hint) for t in allowed(arg))
    if origin is Literal:
        return typing.get_args(hint)
    return (hint,)


# -- validation ---------------------------------------------------------------------------------


def check_known(cls: type, values: dict[str, Any], what: str) -> None:
    names = list(declared(cls))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UserError(f"unknown {what}(s): {', '.join(unknown)} (known: {', '.join(names)})"
                        f"{did_you_mean(unknown, names)}")


def settle(spec: Any) -> None:
    """Coerce every field of the frozen `spec` to its type, then check its type and bounds (for `__post_init__`)."""
    cls = type(spec)
    for name, declaration in declared(cls).items():
        hint = hints(cls)[name]
        value = coerce(hint, getattr(spec, name))
        object.__setattr__(spec, name, value)  # frozen: only __post_init__ may do this
        _check_type(name, hint, value)
        error = declaration.bounds_error(name, value)
        if error:
            raise UserError(error)


def coerce(hint: Any, value: Any) -> Any:
    """YAML and the CLI give ints for floats and strings for everything; accept the harmless cases.

    Anything else is returned as it is, for the type check to name."""
    if typing.get_origin(hint) is tuple:
        return _int_tuple(value)
    kinds = allowed(hint)
    if isinstance(value, int) and not isinstance(value, bool) and float in kinds and int not in kinds:
        return float(value)
    if isinstance(value, str) and str not in kinds and not any(isinstance(a, str) for a in kinds):
        for kind in (int, float):
            if kind in kinds:
                try:
                    return kind(value)
                except ValueError:
                    pass
        if value.lower() in ("none", "null") and type(None) in kinds:
            return None
        if bool in kinds and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def _int_tuple(value: Any) -> Any:
    """A list of ints from YAML or JSON, '17,19,21,23' or '[17, 19]' from the CLI, or one int -> a tuple."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.strip().strip("[]()").split(",") if part.strip()]
        try:
            return tuple(int(part) for part in parts)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _check_type(name: str, hint: Any, value: Any) -> None:
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise UserError(f"{name}: expected a list of integers (e.g. 17,19,21,23), got {value!r}")
        return
    kinds = allowed(hint)
    literals = [a for a in kinds if not isinstance(a, type)]
    classes = tuple(a for a in kinds if isinstance(a, type))
    if literals and value in literals:
        return
    bool_for_number = isinstance(value, bool) and bool not in classes  # True is an int to Python
    if bool_for_number or not (classes and isinstance(value, classes)):
        expected = " | ".join(repr(a) if not isinstance(a, type) else a.__name__ for a in kinds)
        raise UserError(f"{name}: expected {expected}, got {value!r}")


# -- hashing ------------------------------------------------------------------------------------


def identity(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """`values` as an id hashes them: fields added later are left out while at their default."""
    options, default = declared(cls), defaults(cls)
    return {key: value for key, value in values.items()
            if key not in options or options[key].added is None
            or canonical({"v": value}) != canonical({"v": default[key]})}


def canonical(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def digest(values: dict[str, Any]) -> str:
    return digest_text(canonical(values))


def digest_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- command lines ------------------------------------------------------------------------------


def flag(name: str) -> str:
    """The CLI flag of a field: `--frames-per-clip`; a bool also has `--no-...`."""
    return "--" + name.replace("_", "-")


def flags(name: str, declaration: Option) -> list[str]:
    """The flags that set field `name` on a command line: `--device`, or `--quiet` and `-q`."""
    return [declaration.flag or flag(name), *([declaration.short] if declaration.short else [])]


def flag_default(default: Any, declaration: Option) -> Any:
    """A flag's default: a negated flag is off, a picked one unset (None); else the field's default."""
    if declaration.negated:
        return False
    return None if declaration.picked else default


def from_flags(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Field values from flag values keyed by field name: a negated flag's value is turned over."""
    options = declared(cls)
    return {name: not value if options[name].negated else value for name, value in values.items()}


def shown(value: Any) -> str:
    """A value as the CLI takes it and `--help` shows it: a tuple is written 17,19,21,23."""
    return ",".join(map(str, value)) or "none" if isinstance(value, tuple) else str(value)


def command_line(cls: type, values: dict[str, Any], command: str) -> str:
    """`command` with a flag for every field of `values` that differs from its default: it rebuilds the same
    spec, and so the same id. `values` may come back from JSON (a tuple as a list)."""
    parts = [command]
    for name, default in defaults(cls).items():
        if name not in values or json.dumps(values[name]) == json.dumps(default):  # JSON: a list is a tuple
            continue
        value = values[name]
        if isinstance(value, list | tuple):
            parts.append(f"{flag(name)}={','.join(map(str, value))}")  # '=': -7,-5 must not read as a flag
        elif isinstance(value, bool):
            parts.append(flag(name) if value else "--no-" + flag(name)[2:])
        else:
            # repr round-trips a float exactly, so the rebuilt spec hashes the same.
            parts += [flag(name), shlex.quote(repr(value) if isinstance(value, float) else str(value))]
    return " ".join(parts)
