"""Typed configs: dataclasses filled from YAML plus ``key=value`` overrides.

OmegaConf's structured configs reject unknown keys and wrong types; we turn its multi-line
errors into one line that names the key, and let each dataclass's ``__post_init__`` reject
impossible values with :class:`SslsegError`.
"""

from __future__ import annotations

import dataclasses
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


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build ``cls`` from its defaults, then the YAML file at ``path``, then ``overrides``."""
    schema = OmegaConf.structured(cls)
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
    if overrides:
        layers.append(OmegaConf.from_dotlist(list(overrides)))
    try:
        merged = OmegaConf.merge(schema, *layers)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise SslsegError(f"config: {_one_line(exc)}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (paths as strings), for YAML/JSON dumps."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def require(condition: bool, key: str, message: str) -> None:
    """Raise a one-line config error for ``key`` unless ``condition`` holds."""
    if not condition:
        raise SslsegError(f"config: {key}: {message}")


def changed_key(old: dict[str, Any], new: dict[str, Any], ignore: set[str] = frozenset()) -> str:
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
