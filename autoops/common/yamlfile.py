"""Strict YAML loading that remembers line numbers, and schema checks that report them.

catalog.yml and policy.yml are security configuration: a typo must be an error
naming the file and line, never a silently ignored key. Duplicate keys are errors too.

Checking costs (JSON Schema alone takes tens of milliseconds to import), so a document
whose exact bytes passed every check once is remembered (:class:`Verdicts`) and loaded
again with libyaml and no checks: ``autoops list`` stays quick.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jsonschema

from autoops.errors import AutoopsError


class LineDict(dict[str, Any]):
    """A mapping that knows the line of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that knows the line of each of its items (1-based)."""

    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, found {key!r}", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


ErrorFactory = Callable[[str], AutoopsError]


def read(path: Path, error: ErrorFactory) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc


def load(path: Path, error: ErrorFactory, data: bytes | None = None) -> Any:
    """Parse ``path`` (or its ``data``, read already); any problem becomes ``error(message)``."""
    raw = read(path, error) if data is None else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8: {exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise error(f"{path}{where}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: {exc}") from exc


def line_of(document: Any, path: Sequence[str | int]) -> int:
    """Best line for a location inside a loaded document (the deepest one known)."""
    line = getattr(document, "line", 0)
    node = document
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return int(line)


def load_checked_before(data: bytes) -> Any:
    """A document that passed its checks before (:class:`Verdicts`): libyaml, no lines."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader


class Verdicts:
    """Which exact documents passed their checks, under which checking code.

    A verdict is an empty file named by sha256 over the kind, the checking code's own
    source and the document's bytes, in a directory only this account writes (the cache
    directory; the service account's in service mode). Anything else — a changed byte, a
    changed check — is checked in full.
    """

    def __init__(self, directory: Path | None, code: bytes = b"") -> None:
        self.directory = directory
        self.code = code

    def _name(self, kind: str, data: bytes) -> str:
        return hashlib.sha256(kind.encode() + b"\0" + self.code + b"\0" + data).hexdigest()

    def known(self, kind: str, data: bytes) -> bool:
        return self.directory is not None and (self.directory / self._name(kind, data)).exists()

    def remember(self, kind: str, data: bytes) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.directory / self._name(kind, data)).touch(mode=0o600)
        except OSError:
            return  # a cache: the next load checks in full again


def validate(
    document: Any, schema: dict[str, Any], path: Path, error: ErrorFactory
) -> None:
    """Check ``document`` against a JSON Schema; report the first error with its line."""
    import jsonschema  # noqa: PLC0415 - only where a document is checked in full

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    first = jsonschema.exceptions.best_match(errors) or errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
    location: list[str | int] = list(first.absolute_path)
    unknown = _unknown_keys(first)
    if unknown:  # point at the offending key itself, not at its parent
        location.append(unknown[0])
    raise error(f"{path}:{line_of(document, location)}: at {where}: {describe(first)}")


def _unknown_keys(err: jsonschema.ValidationError) -> list[str]:
    if (err.validator == "additionalProperties" and isinstance(err.instance, dict)
            and isinstance(err.schema, dict)):
        return sorted(set(err.instance) - set(err.schema.get("properties", {})))
    return []


def describe(err: jsonschema.ValidationError) -> str:
    """A short, human sentence for a schema error (unknown keys named plainly)."""
    unknown = _unknown_keys(err)
    if unknown and isinstance(err.schema, dict):
        known = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        return f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {known}"
    return str(err.message)
