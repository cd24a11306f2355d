"""The allowlist: catalog.yml maps action names to playbooks, risk and typed parameters.

Nothing outside the catalog runs. Parameters are JSON Schema; every string parameter
must be constrained by a ``pattern`` or an ``enum`` so that no free text reaches a play.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoops.common import yamlfile
from autoops.common.names import ACTION_NAME, ENV_NAME, PARAM_NAME
from autoops.core.risk import NAMES as RISK_NAMES
from autoops.core.risk import Risk
from autoops.errors import ActionUnknownError, CatalogInvalidError, ParamInvalidError

if TYPE_CHECKING:
    import jsonschema

_SCALAR_PARAM = {
    "type": "object",
    "required": ["type", "description"],
    "properties": {
        "type": {"enum": ["string", "integer", "number", "boolean"]},
        "description": {"type": "string", "minLength": 1},
        "default": {},
        "enum": {"type": "array", "minItems": 1},
        "pattern": {"type": "string"},
        "minLength": {"type": "integer", "minimum": 0},
        "maxLength": {"type": "integer", "minimum": 1},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "examples": {"type": "array"},
    },
    "additionalProperties": False,
    "if": {"properties": {"type": {"const": "string"}}},
    "then": {"anyOf": [{"required": ["pattern"]}, {"required": ["enum"]}]},
}

_NARROWING = {
    "type": "object",
    "properties": {
        "enum": {"type": "array", "minItems": 1},
        "pattern": {"type": "string"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}

CATALOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "actions"],
    "properties": {
        "version": {"const": 1},
        "actions": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": ACTION_NAME},
            "additionalProperties": {
                "type": "object",
                "required": ["description", "playbook", "risk", "environments"],
                "properties": {
                    "description": {"type": "string", "minLength": 1, "maxLength": 120},
                    "playbook": {"type": "string", "pattern": r"^playbooks/[a-z0-9-]+\.yml$"},
                    "risk": {"enum": list(RISK_NAMES)},
                    "environments": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": ENV_NAME},
                    },
                    "check_mode": {"type": "boolean"},
                    "pin_revision": {"type": "boolean"},
                    "idempotent": {"type": "boolean"},
                    "rollback": {"type": ["string", "null"], "pattern": ACTION_NAME},
                    "aliases": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": ACTION_NAME},
                    },
                    "params": {
                        "type": "object",
                        "properties": {
                            "required": {
                                "type": "array",
                                "items": {"type": "string", "pattern": PARAM_NAME},
                            },
                            "properties": {
                                "type": "object",
                                "propertyNames": {"pattern": PARAM_NAME},
                                "additionalProperties": _SCALAR_PARAM,
                            },
                        },
                        "additionalProperties": False,
                    },
                    "env_params": {
                        "type": "object",
                        "propertyNames": {"pattern": ENV_NAME},
                        "additionalProperties": {
                            "type": "object",
                            "propertyNames": {"pattern": PARAM_NAME},
                            "additionalProperties": _NARROWING,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

# Parameters become top-level extra vars: they must not shadow Ansible's own variables
# or the autoops_* variables autoops sets (run id, actor, env).
RESERVED_PARAMS = frozenset({
    "environment", "group_names", "groups", "hostvars", "inventory_dir", "inventory_file",
    "inventory_hostname", "inventory_hostname_short", "item", "omit", "play_hosts",
    "playbook_dir", "role_name", "role_path", "vars", "lookup", "query", "q", "now",
})
_INT = re.compile(r"^[+-]?[0-9]{1,18}$")
_NUMBER = re.compile(r"^[+-]?([0-9]{1,18}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Action:
    """One allowlisted action, as declared in catalog.yml."""

    name: str
    description: str
    playbook: str
    risk: Risk
    environments: tuple[str, ...]
    check_mode: bool
    rollback: str | None
    aliases: tuple[str, ...]
    params_schema: Mapping[str, Any]
    env_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The `revision` parameter (a branch or tag) is resolved to a commit of the `app`'s
    # repository when the run is planned: that commit is what is approved and deployed.
    pin_revision: bool = False
    # Running it twice leaves what running it once did (SAFE actions are; others say so).
    idempotent: bool = False

    def schema_for(self, env: str | None) -> dict[str, Any]:
        """The full JSON Schema for this action's parameters in ``env``.

        The environment narrowing is folded into each property, so one schema
        states everything (enum allowlists, ranges) for display and validation.
        """
        props: dict[str, Any] = {
            name: dict(spec) for name, spec in self.params_schema.get("properties", {}).items()
        }
        for name, narrowing in (self.env_params.get(env, {}) if env else {}).items():
            props[name].update(narrowing)
        return {
            "type": "object",
            "properties": props,
            "required": list(self.params_schema.get("required", [])),
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class ResolvedAction:
    """An action with parameters that passed its schema (defaults filled in)."""

    action: Action
    params: Mapping[str, Any]


class Catalog:
    """The loaded, checked allowlist."""

    def __init__(self, actions: Mapping[str, Action], path: Path) -> None:
        self.actions = dict(actions)
        self.path = path
        self._aliases = {alias: a.name for a in actions.values() for alias in a.aliases}

    @classmethod
    def load(cls, path: Path, project_dir: Path | None = None,
             verdicts: yamlfile.Verdicts | None = None) -> Catalog:
        """Load and check catalog.yml; every problem names the file and line.

        With ``verdicts``, a catalog whose exact bytes passed every check before is
        loaded without the content checks (its playbooks must still exist).
        """
        if not path.exists():  # no project here at all (a wheel install, a wrong directory)
            raise CatalogInvalidError(
                f"{path}: no catalog: {path.parent} is not an operations repository",
                remedy="Point AUTOOPS_PROJECT_DIR at one, or make one with `autoops init DIR`.")
        project = project_dir or path.parent
        data = yamlfile.read(path, CatalogInvalidError)
        if verdicts is not None and verdicts.known("catalog", data):
            try:
                doc = yamlfile.load_checked_before(data)
                return cls({name: _build_action(name, spec, doc, path, project, checked=True)
                            for name, spec in doc["actions"].items()}, path)
            except (CatalogInvalidError, KeyError, TypeError, ValueError):
                pass  # checked in full below, for a message with its line
        doc = yamlfile.load(path, CatalogInvalidError, data)
        yamlfile.validate(doc, CATALOG_SCHEMA, path, CatalogInvalidError)
        actions: dict[str, Action] = {}
        for name, spec in doc["actions"].items():
            actions[name] = _build_action(name, spec, doc, path, project)
        _check_references(actions, doc, path)
        if verdicts is not None:
            verdicts.remember("catalog", data)
        return cls(actions, path)

    def get(self, name: str) -> Action:
        """The action called ``name`` (or one of its aliases)."""
        key = self._aliases.get(name, name)
        if key in self.actions:
            return self.actions[key]
        close = difflib.get_close_matches(name, [*self.actions, *self._aliases], n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ActionUnknownError(f"unknown action {name!r}: it is not in the catalog.{hint}")

    def resolve(self, name: str, raw: Mapping[str, Any], env: str | None) -> ResolvedAction:
        """Allowlist lookup plus typed, validated parameters (strings are coerced)."""
        action = self.get(name)
        schema = action.schema_for(env)
        props: Mapping[str, Any] = schema["properties"]
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in props:
                known = ", ".join(sorted(props)) or "none"
                raise ParamInvalidError(
                    f"{action.name}: unknown parameter {key!r}; this action takes: {known}"
                )
            params[key] = coerce(key, value, props[key]["type"])
        for key, spec in props.items():
            if key not in params and "default" in spec:
                params[key] = spec["default"]
        _validate_params(action.name, params, schema, env)
        return ResolvedAction(action=action, params=params)


def coerce(name: str, value: Any, type_name: str) -> Any:
    """Turn a command-line string into the schema's scalar type; others pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if type_name == "integer":
        if not _INT.match(text):
            raise ParamInvalidError(f"parameter {name!r}: {value!r} is not an integer")
        return int(text)
    if type_name == "number":
        if not _NUMBER.match(text):
            raise ParamInvalidError(f"parameter {name!r}: {value!r} is not a number")
        return float(text)
    if type_name == "boolean":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ParamInvalidError(f"parameter {name!r}: {value!r} is not true or false")
    return value


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` items from ``-p``; a key may appear once."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(PARAM_NAME, key):
            raise ParamInvalidError(
                f"-p {pair!r}: expected KEY=VALUE with KEY like 'service' or 'keep_last'"
            )
        if key in result:
            raise ParamInvalidError(f"-p {key}: given more than once")
        result[key] = value
    return result


def verdicts(cache_dir: Path | None) -> yamlfile.Verdicts:
    """Where catalog and policy verdicts are kept, keyed also by the checking code."""
    code = b"".join(Path(__file__).with_name(name).read_bytes()
                    for name in ("catalog.py", "policy.py", "windows.py", "risk.py"))
    return yamlfile.Verdicts(cache_dir / "verdicts" if cache_dir else None,
                             hashlib.sha256(code).digest())


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}
_ANNOTATIONS = frozenset({"type", "description", "default", "examples", "enum", "pattern",
                          "minLength", "maxLength", "minimum", "maximum"})


def quick_valid(params: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    """True only if ``params`` certainly satisfy ``schema`` (a catalog's parameter schema).

    The catalog admits a handful of keywords (see ``_SCALAR_PARAM``); this checks them
    the strict way (no 1.0 for an integer, no True for 1 in an enum, patterns matched
    whole). False means "not sure": JSON Schema then decides, and says what is wrong.
    It spares a run importing and building a JSON Schema validator.
    """
    props = schema.get("properties", {})
    if set(schema) - {"type", "properties", "required", "additionalProperties"} \
            or schema.get("additionalProperties") is not False \
            or any(name not in params for name in schema.get("required", [])):
        return False
    for name, value in params.items():
        spec = props.get(name)
        if spec is None or set(spec) - _ANNOTATIONS or not _quick_value(value, spec):
            return False
    return True


def _quick_value(value: Any, spec: Mapping[str, Any]) -> bool:
    check = _TYPES.get(spec.get("type", ""))
    if check is None or not check(value):
        return False
    if "enum" in spec and not any(type(value) is type(e) and value == e for e in spec["enum"]):
        return False
    if isinstance(value, str):
        if "pattern" in spec and re.fullmatch(spec["pattern"], value) is None:
            return False
        if not spec.get("minLength", 0) <= len(value) <= spec.get("maxLength", len(value)):
            return False
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in spec and not value >= spec["minimum"]:
            return False
        if "maximum" in spec and not value <= spec["maximum"]:
            return False
    return True


def _validate_params(action: str, params: Mapping[str, Any], schema: dict[str, Any],
                     env: str | None) -> None:
    if quick_valid(params, schema):
        return
    import jsonschema  # noqa: PLC0415 - only when the quick check is not sure

    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(dict(params)))
    if not errors:
        errors = _partial_matches(params, schema)
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors) or errors[0]
    where = f"parameter {err.absolute_path[0]!r}" if err.absolute_path else "parameters"
    in_env = f" in {env}" if env else ""
    raise ParamInvalidError(f"{action}{in_env}: {where}: {_short(err)}")


def _partial_matches(params: Mapping[str, Any], schema: dict[str, Any]) -> list[jsonschema.ValidationError]:
    r"""Python's ``$`` also matches before a final newline; JSON Schema's does not.

    Every catalog pattern is anchored, so a full match restores the JSON Schema meaning
    ("nginx\n" must not pass ``^[a-z]+$``).
    """
    import jsonschema  # noqa: PLC0415 - see _validate_params

    found = []
    for name, value in params.items():
        pattern = schema["properties"].get(name, {}).get("pattern")
        if isinstance(value, str) and pattern and not re.fullmatch(pattern, value):
            found.append(jsonschema.ValidationError(
                f"{value!r} does not match", validator="pattern", validator_value=pattern,
                instance=value, path=[name]))
    return found


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "pattern":
        return f"{err.instance!r} does not match the allowed pattern {err.validator_value}"
    return yamlfile.describe(err)


def _build_action(name: str, spec: Mapping[str, Any], doc: Any, path: Path,
                  project: Path, *, checked: bool = False) -> Action:
    def fail(where: list[str | int], message: str) -> CatalogInvalidError:
        line = yamlfile.line_of(doc, ["actions", name, *where])
        return CatalogInvalidError(f"{path}:{line}: action {name!r}: {message}")

    params = spec.get("params") or {}
    props = params.get("properties", {})
    for req in params.get("required", []):
        if req not in props:
            raise fail(["params", "required"], f"required parameter {req!r} is not defined")
    for pname, pspec in props.items():
        if not checked:
            _check_param_spec(pname, pspec, fail)
    env_params = spec.get("env_params") or {}
    for env, narrowing in env_params.items():
        if env not in spec["environments"]:
            raise fail(["env_params", env], f"env_params for {env!r}, which is not in environments")
        for pname in narrowing:
            if pname not in props:
                raise fail(["env_params", env, pname], f"narrows undefined parameter {pname!r}")
    if spec.get("pin_revision") and not {"app", "revision"} <= set(props):
        raise fail(["pin_revision"], "pin_revision needs the parameters app and revision")
    playbook = (project / spec["playbook"]).resolve()
    if not playbook.is_file() or (project / "playbooks").resolve() not in playbook.parents:
        raise fail(["playbook"], f"playbook {spec['playbook']} does not exist under playbooks/")
    return Action(
        name=name,
        description=spec["description"],
        playbook=spec["playbook"],
        risk=Risk.parse(spec["risk"]),
        environments=tuple(spec["environments"]),
        check_mode=bool(spec.get("check_mode", False)),
        rollback=spec.get("rollback"),
        aliases=tuple(spec.get("aliases", [])),
        params_schema={"properties": dict(props), "required": list(params.get("required", []))},
        env_params={env: dict(n) for env, n in env_params.items()},
        pin_revision=bool(spec.get("pin_revision", False)),
        idempotent=bool(spec.get("idempotent", Risk.parse(spec["risk"]) is Risk.SAFE)),
    )


def _check_param_spec(pname: str, pspec: Mapping[str, Any], fail: Any) -> None:
    if pname in RESERVED_PARAMS or pname.startswith(("ansible_", "autoops_")):
        raise fail(["params", "properties", pname],
                   f"parameter name {pname!r} is reserved by Ansible or autoops")
    if "pattern" in pspec:
        if not (pspec["pattern"].startswith("^") and pspec["pattern"].endswith("$")):
            raise fail(["params", "properties", pname, "pattern"],
                       "patterns must be anchored with ^ and $")
        try:
            re.compile(pspec["pattern"])
        except re.error as exc:
            raise fail(["params", "properties", pname, "pattern"], f"bad pattern: {exc}") from None
    if "default" in pspec:
        import jsonschema  # noqa: PLC0415 - only where a catalog is checked in full

        single = {"type": "object", "properties": {pname: dict(pspec)}}
        errors = list(jsonschema.Draft202012Validator(single).iter_errors({pname: pspec["default"]}))
        if errors:
            raise fail(["params", "properties", pname, "default"],
                       f"default does not satisfy its own schema: {errors[0].message}")


def _check_references(actions: Mapping[str, Action], doc: Any, path: Path) -> None:
    seen: dict[str, str] = {}
    for action in actions.values():
        if action.rollback is not None and action.rollback not in actions:
            line = yamlfile.line_of(doc, ["actions", action.name, "rollback"])
            raise CatalogInvalidError(
                f"{path}:{line}: action {action.name!r}: rollback {action.rollback!r} is not an action"
            )
        for alias in action.aliases:
            owner = seen.get(alias)
            if (owner and owner != action.name) or (alias in actions and alias != action.name):
                line = yamlfile.line_of(doc, ["actions", action.name, "aliases"])
                raise CatalogInvalidError(
                    f"{path}:{line}: alias {alias!r} of {action.name!r} is already taken"
                )
            seen[alias] = action.name
