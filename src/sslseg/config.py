"""Typed configs: dataclasses filled from YAML plus ``key=value`` overrides, and the one loader
every command uses.

OmegaConf's structured configs reject unknown keys and wrong types; we turn its multi-line
errors into one line that names the key, and let each dataclass's ``__post_init__`` reject
impossible values with :class:`SslsegError`.

Every ``sslseg`` command is ``sslseg NAME [CONFIG.yaml] [key=value ...]``:
:func:`add_config_arguments` gives its parser that shape (and its ``--help`` the keys of the
config dataclass, with type and default), :func:`config_from_args` turns the parsed arguments
into the typed config: defaults, then the YAML file, then ``key=value``, then flag aliases.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sslseg.errors import SslsegError

T = TypeVar("T")

#: numeric precision of a training step: ``auto`` = bf16 where the device has it natively
PRECISIONS = ("auto", "fp32", "bf16")


def _one_line(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{key}: {first}" if key else first


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: dict[str, Any] | None = None,
    base: T | None = None,
) -> T:
    """Build ``cls`` from its defaults, then the YAML at ``path``, ``overrides``, ``values``.

    ``overrides`` are ``key=value`` strings (dotted keys reach nested configs); ``values`` a
    mapping of keys to values, checked like the rest (the flag aliases of a command, or a
    caller's settings). ``base``, an instance of ``cls``, replaces the class defaults.
    """
    schema = OmegaConf.structured(base if base is not None else cls)
    layers = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SslsegError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SslsegError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise SslsegError(f"{path}: a config file must be a mapping of keys to values")
        layers.append(OmegaConf.create(data))
    for item in overrides:
        if "=" not in item:
            raise SslsegError(f"{item}: an override must look like key=value")
    try:
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        if values:
            layers.append(OmegaConf.create(_plain(values)))
        merged = OmegaConf.merge(schema, *layers)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise SslsegError(f"config: {_one_line(exc)}") from None


def split_config_args(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """The optional YAML path (the argument without '=') and the ``key=value`` overrides."""
    config, overrides = None, []
    for item in items:
        is_file = item.endswith((".yaml", ".yml")) and Path(item).is_file()
        if "=" in item and not is_file:
            overrides.append(item)
        elif config is None:
            config = item
        else:
            raise SslsegError(
                f"{item}: only one config file may be given (overrides are key=value)"
            )
    return config, overrides


_NO_CONST = "<takes a value>"


@dataclasses.dataclass(frozen=True)
class Alias:
    """A flag that sets one config key: ``--out DIR`` for ``out=DIR``.

    ``const``: the value a flag without argument sets (``--quiet`` sets ``progress`` to
    false); ``repeat``: the flag may be given several times and sets the list of its values.
    """

    flag: str
    key: str
    help: str = ""
    const: Any = _NO_CONST
    repeat: bool = False
    metavar: str = ""

    @property
    def dest(self) -> str:
        return f"alias_{self.key}"


QUIET = Alias("--quiet", "progress", "no progress bars", const=False)
_CONFIG_DEST = "config_args"


def add_config_arguments(
    parser: argparse.ArgumentParser,
    schema: Any,
    aliases: Sequence[Alias] = (),
    notes: str = "",
) -> None:
    """Give ``parser`` the shape ``[CONFIG.yaml] [key=value ...]`` for the config ``schema``.

    ``schema`` is the config dataclass, or an instance whose values are the defaults.
    ``--config FILE`` is an alias for the positional file; ``--quiet`` for ``progress=false``
    (when the config has ``progress``); ``aliases`` add more flags. The epilog lists every
    key with its type and default, then ``notes``.
    """
    cls = schema if isinstance(schema, type) else type(schema)
    parser.add_argument(
        _CONFIG_DEST,
        nargs="*",
        metavar="CONFIG.yaml|key=value",
        help="an optional YAML config, then key=value overrides of its keys (listed below)",
    )
    parser.add_argument("--config", dest="alias_config", metavar="FILE", help="the YAML config")
    names = {f.name for f in dataclasses.fields(cls)}
    every = [*((QUIET,) if "progress" in names else ()), *aliases]
    for alias in every:
        if alias.key not in names:
            raise ValueError(f"{alias.flag}: {cls.__name__} has no key {alias.key}")
        if alias.const is not _NO_CONST:
            shown = str(alias.const).lower() if isinstance(alias.const, bool) else alias.const
            kind: dict[str, Any] = {"action": "store_const", "const": alias.const}
        else:
            shown = "..."
            action = "append" if alias.repeat else "store"
            kind = {"action": action, "metavar": alias.metavar or alias.key.upper()}
        same = f"{alias.key}={shown}" + (", repeatable" if alias.repeat else "")
        help_text = f"{alias.help} (= {same})" if alias.help else f"= {same}"
        parser.add_argument(alias.flag, dest=alias.dest, help=help_text, **kind)
    parser.set_defaults(config_schema=schema, config_aliases=tuple(every))
    parser.epilog = keys_help(schema) + (f"\n\n{notes}" if notes else "")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def config_from_args(args: argparse.Namespace) -> Any:
    """The typed config of a command parsed with :func:`add_config_arguments`.

    Defaults, then the YAML file, then the ``key=value`` overrides, then the flag aliases
    (a flag wins over the same key given as ``key=value``).
    """
    schema = args.config_schema
    path, overrides = split_config_args(getattr(args, _CONFIG_DEST, None) or [])
    flag_path = getattr(args, "alias_config", None)
    if flag_path is not None:
        if path is not None:
            raise SslsegError(f"{flag_path}: only one config file may be given")
        path = flag_path
    values = {}
    for alias in args.config_aliases:
        value = getattr(args, alias.dest, None)
        if value is not None:
            values[alias.key] = value
    cls = schema if isinstance(schema, type) else type(schema)
    base = None if isinstance(schema, type) else schema
    return load_config(cls, path, overrides, values, base)


def keys_help(schema: Any) -> str:
    """Every key of a config dataclass (nested ones dotted) with its type and default."""
    rows = list(_key_rows(schema, ""))
    widths = [min(max(len(row[i]) for row in rows), cap) for i, cap in ((0, 40), (1, 24), (2, 16))]
    lines = ["config keys (key=value, or in CONFIG.yaml), with type and default:"]
    for key, type_name, default, note in rows:
        line = f"  {key:<{widths[0]}}  {type_name:<{widths[1]}}  "
        line += f"{default:<{widths[2]}}  # {note}" if note else default
        lines.append(line)
    return "\n".join(lines)


def _key_rows(schema: Any, prefix: str):
    cls = schema if isinstance(schema, type) else type(schema)
    notes = _field_notes(cls)
    for f in dataclasses.fields(cls):
        if isinstance(schema, type):
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = f.default
        else:
            default = getattr(schema, f.name)
        if dataclasses.is_dataclass(default):
            yield from _key_rows(default, f"{prefix}{f.name}.")
            continue
        yield f"{prefix}{f.name}", str(f.type), _show(default), notes.get(f.name, "")
        items = default if isinstance(default, list) else []
        if items and dataclasses.is_dataclass(items[0]):
            yield from _key_rows(type(items[0]), f"{prefix}{f.name}[].")


def _show(value: Any, limit: int = 60) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    if value is dataclasses.MISSING:
        return "(required)"
    text = yaml.safe_dump(
        _plain(value), default_flow_style=True, width=10_000, sort_keys=False
    ).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    if isinstance(value, str) and text in ('""', "''"):
        text = '""'
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_notes(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field in the class source (empty when unknown)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    notes = {}
    for match in re.finditer(r"^\s+(\w+): [^\n#]+?#\s*(.+)$", source, re.MULTILINE):
        notes.setdefault(match.group(1), match.group(2).strip())
    return notes


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (paths as strings), for YAML/JSON dumps."""
    return _plain(dataclasses.asdict(config))


def require(condition: bool, key: str, message: str) -> None:
    """Raise a one-line config error for ``key`` unless ``condition`` holds."""
    if not condition:
        raise SslsegError(f"config: {key}: {message}")


def require_choice(value: Any, choices: Iterable[Any], key: str) -> None:
    """Raise a one-line config error for ``key`` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    require(value in choices, key, f"'{value}' is not one of {', '.join(map(str, choices))}")


#: the keys a run may change when it resumes (or when a finished result is reused): they
#: change where or how visibly it runs, not what it computes. The one rule for every command.
RESUMABLE_KEYS = frozenset({"device", "compile", "progress", "tensorboard", "out"})


def changed_key(
    old: dict[str, Any], new: dict[str, Any], ignore: frozenset[str] | set[str] = frozenset()
) -> str:
    """The first key (dotted) whose value differs between two config dicts; "" when none.

    A key missing from ``old`` counts as changed: a result made before the key existed is not
    known to match it.
    """
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = changed_key(a, b)
            if inner:
                return f"{key}.{inner}"
        elif a != b:
            return key
    return ""


_MISSING = object()


def changed_since(
    saved: dict[str, Any], config: Any, ignore: frozenset[str] | set[str] = frozenset()
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """:func:`changed_key` between a run's saved config dict and the dataclass ``config``,
    where a key added to the dataclass after the run was made counts as unchanged while it
    keeps its default (old runs stay valid); returns (key, old, new) as compared."""
    current = config_to_dict(config)
    defaults = config_to_dict(type(config)())
    old = {k: v for k, v in current.items() if v == defaults.get(k)}
    old.update(saved)
    return changed_key(old, current, ignore), old, current
