"""``runbooks/*.yml``: a finding's match, the catalog actions that fix it, and a breaker.

A runbook is one file; its name is the file's stem. Parameters of a step are literals or
``{from: subject}`` / ``{from: host}`` — a value taken whole from the finding, never a
template — and they are checked against the catalog (names now, types and each
environment's allowlist when a finding picks the step), so a runbook can ask for
nothing a person could not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from autoops.common import yamlfile
from autoops.common.durations import parse_duration
from autoops.core.catalog import Catalog
from autoops.errors import AutoopsError, RunbookInvalidError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SEVERITIES = ("info", "warning", "critical")
SOURCES = ("subject", "host")  # what a parameter may take from the finding
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255},
          "minItems": 1, "uniqueItems": True}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["description", "match", "steps"],
    "properties": {
        "description": {"type": "string", "minLength": 1},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "required": ["check"],
            "properties": {
                "check": {"type": "string", "pattern": "^[a-z][a-z_]{0,31}$"},
                "severity": {"type": "array", "items": {"enum": list(SEVERITIES)},
                             "minItems": 1, "uniqueItems": True},
                "environments": _NAMES, "hosts": _NAMES, "groups": _NAMES, "subjects": _NAMES,
            },
        },
        "steps": {
            "type": "array", "minItems": 1, "maxItems": 10,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["action"],
                "properties": {
                    "action": {"type": "string", "minLength": 1},
                    "params": {"type": "object", "additionalProperties": {"anyOf": [
                        {"type": ["string", "integer", "number", "boolean"]},
                        {"type": "object", "additionalProperties": False, "required": ["from"],
                         "properties": {"from": {"enum": list(SOURCES)}}},
                    ]}},
                },
            },
        },
        "verify_within": {"type": "string", "minLength": 1},
        "breaker": {
            "type": "object",
            "additionalProperties": False,
            "required": ["attempts", "within"],
            "properties": {"attempts": {"type": "integer", "minimum": 1, "maximum": 20},
                           "within": {"type": "string", "minLength": 1}},
        },
    },
}


@dataclass(frozen=True)
class Match:
    check: str
    severities: tuple[str, ...] = SEVERITIES
    environments: tuple[str, ...] = ()  # empty: any
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    action: str
    params: Mapping[str, Any]  # a literal, or {"from": "subject" | "host"}


@dataclass(frozen=True)
class Breaker:
    """At most ``attempts`` heals of one host by one runbook within ``within``; then escalate."""

    attempts: int = 3
    within: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    description: str
    match: Match
    steps: tuple[Step, ...]
    breaker: Breaker = Breaker()
    # The finding must resolve within this long after the steps ran, or the fix did not hold.
    verify_within: timedelta = timedelta(minutes=15)


def load_all(directory: Path, catalog: Catalog) -> list[Runbook]:
    """Every ``*.yml`` runbook in ``directory``, in file-name order (the first match wins)."""
    if not directory.is_dir():
        return []
    return [load(path, catalog) for path in sorted(directory.glob("*.yml"))]


def load(path: Path, catalog: Catalog) -> Runbook:
    """One runbook file, checked against the schema and the catalog; errors name the line."""
    if not NAME.match(path.stem):
        raise RunbookInvalidError(f"{path}: a runbook's file name is its name: lower-case "
                                  "letters, digits and '-' only")
    doc = yamlfile.load(path, RunbookInvalidError)
    yamlfile.validate(doc, SCHEMA, path, RunbookInvalidError)
    steps = []
    for index, raw in enumerate(doc["steps"]):
        where = f"{path}:{yamlfile.line_of(doc, ['steps', index])}"
        try:
            action = catalog.get(raw["action"])
        except AutoopsError as exc:
            raise RunbookInvalidError(f"{where}: {exc.message}") from None
        params = dict(raw.get("params") or {})
        unknown = sorted(set(params) - set(action.params_schema.get("properties", {})))
        if unknown:
            raise RunbookInvalidError(f"{where}: {action.name} takes no parameter "
                                      f"{', '.join(unknown)}")
        steps.append(Step(action.name, {k: dict(v) if isinstance(v, Mapping) else v
                                        for k, v in params.items()}))
    breaker = Breaker()
    if "breaker" in doc:
        try:
            within = parse_duration(doc["breaker"]["within"])
        except ValueError as exc:
            raise RunbookInvalidError(
                f"{path}:{yamlfile.line_of(doc, ['breaker', 'within'])}: {exc}") from None
        breaker = Breaker(int(doc["breaker"]["attempts"]), within)
    verify_within = Runbook.verify_within
    if "verify_within" in doc:
        try:
            verify_within = parse_duration(doc["verify_within"])
        except ValueError as exc:
            raise RunbookInvalidError(
                f"{path}:{yamlfile.line_of(doc, ['verify_within'])}: {exc}") from None
    match = doc["match"]
    return Runbook(
        name=path.stem, path=path, description=str(doc["description"]),
        match=Match(check=match["check"],
                    severities=tuple(match.get("severity") or SEVERITIES),
                    environments=tuple(match.get("environments") or ()),
                    hosts=tuple(match.get("hosts") or ()),
                    groups=tuple(match.get("groups") or ()),
                    subjects=tuple(match.get("subjects") or ())),
        steps=tuple(steps), breaker=breaker, verify_within=verify_within)
