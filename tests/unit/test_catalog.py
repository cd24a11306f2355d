from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autoops.core import catalog as catalog_module
from autoops.core.catalog import Catalog, coerce, parse_assignments
from autoops.core.risk import Risk
from autoops.errors import ActionUnknownError, CatalogInvalidError, ParamInvalidError
from tests.conftest import REPO

HOSTILE = [
    "{{ lookup('pipe', 'touch /tmp/autoops-pwned') }}",
    "{% raw %}x{% endraw %}",
    "nginx; rm -rf /",
    "$(touch /tmp/autoops-pwned)",
    "`id`",
    "nginx\nid",
    "nginx\n",
    "/var\n",
    "../../etc/passwd",
    "--upload-pack=touch /tmp/x",
    "-f",
    "a b",
    "",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(REPO / "catalog.yml", REPO)


def test_repository_catalog_has_the_required_actions(catalog: Catalog) -> None:
    expected = {"health": Risk.SAFE, "disk-report": Risk.SAFE, "service-status": Risk.SAFE,
                "restart-service": Risk.MEDIUM, "backup": Risk.LOW,
                "backup-prune": Risk.DESTRUCTIVE, "deploy": Risk.HIGH}
    for name, risk in expected.items():
        assert catalog.get(name).risk is risk
    assert catalog.get("deploy").rollback == "deploy-rollback"


def test_aliases_resolve_to_actions(catalog: Catalog) -> None:
    assert catalog.get("restart").name == "restart-service"
    assert catalog.get("prune").name == "backup-prune"


def test_unknown_action_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(ActionUnknownError, match="Did you mean: health"):
        catalog.get("helth")


def test_defaults_fill_in(catalog: Catalog) -> None:
    resolved = catalog.resolve("health", {}, "local")
    assert resolved.params == {"disk_max_percent": 90, "mem_max_percent": 95}


def test_strings_are_coerced_by_schema_type(catalog: Catalog) -> None:
    resolved = catalog.resolve("backup-prune", {"keep": "3"}, "local")
    assert resolved.params == {"keep": 3}


@pytest.mark.parametrize(("action", "params", "message"), [
    ("backup-prune", {}, "'keep' is a required property"),
    ("backup-prune", {"keep": "0"}, "0 is less than the minimum of 1"),
    ("backup-prune", {"keep": "three"}, "is not an integer"),
    ("backup-prune", {"keep": "3", "force": "yes"}, "unknown parameter 'force'"),
    ("restart-service", {"service": "sshd"}, "'sshd' is not one of ['nginx', 'app']"),
    ("health", {"disk_max_percent": "101"}, "greater than the maximum"),
    ("deploy", {"app": "app", "revision": "../x"}, "does not match"),
])
def test_bad_params_are_refused_with_the_reason(catalog: Catalog, action: str,
                                                params: dict[str, str], message: str) -> None:
    env = "staging"
    with pytest.raises(ParamInvalidError) as err:
        catalog.resolve(action, params, env)
    assert message in err.value.message
    assert err.value.status == 2


def test_env_allowlists_differ(catalog: Catalog) -> None:
    assert catalog.resolve("restart-service", {"service": "autoops-demo"}, "local").params
    with pytest.raises(ParamInvalidError):
        catalog.resolve("restart-service", {"service": "autoops-demo"}, "production")


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("action", "key", "others"), [
    ("service-status", "service", {}),
    ("deploy", "revision", {"app": "demo"}),
    ("backup", "label", {}),
    ("disk-report", "path", {}),
])
def test_hostile_strings_never_pass_the_real_catalog(catalog: Catalog, action: str, key: str,
                                                      others: dict[str, str], value: str) -> None:
    with pytest.raises(ParamInvalidError):
        catalog.resolve(action, {**others, key: value}, "local")


def test_every_string_parameter_is_constrained(catalog: Catalog) -> None:
    for action in catalog.actions.values():
        for name, spec in action.schema_for(None)["properties"].items():
            if spec["type"] == "string":
                assert "pattern" in spec or "enum" in spec, (action.name, name)


@given(st.one_of(st.text(max_size=60), st.from_regex(r"[a-z]{1,8}\n", fullmatch=True)))
def test_service_pattern_admits_only_plain_names(text: str) -> None:
    catalog = Catalog.load(REPO / "catalog.yml", REPO)
    try:
        catalog.resolve("service-status", {"service": text}, "local")
    except ParamInvalidError:
        return
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9@._-]{0,63}", text)


@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_integer_coercion_round_trips(value: int) -> None:
    assert coerce("n", str(value), "integer") == value


@given(st.text(max_size=30))
def test_integer_coercion_accepts_only_plain_decimals(text: str) -> None:
    try:
        value = coerce("n", text, "integer")
    except ParamInvalidError:
        assert not re.fullmatch(r"\s*[+-]?[0-9]{1,18}\s*", text)
        return
    assert isinstance(value, int)
    assert int(text.strip()) == value


@given(st.text(max_size=20))
def test_boolean_coercion_is_strict(text: str) -> None:
    try:
        value = coerce("b", text, "boolean")
    except ParamInvalidError:
        assert text.strip().lower() not in {"true", "false", "yes", "no", "on", "off", "1", "0"}
        return
    assert value is (text.strip().lower() in {"true", "yes", "on", "1"})


@given(st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True), st.text(max_size=40))
def test_assignments_split_on_the_first_equals(key: str, value: str) -> None:
    assert parse_assignments([f"{key}={value}"]) == {key: value}


@pytest.mark.parametrize("pair", ["novalue", "=x", "Bad=1", "a-b=1", "1a=2", " a=1"])
def test_malformed_assignments_are_refused(pair: str) -> None:
    with pytest.raises(ParamInvalidError):
        parse_assignments([pair])


def test_repeated_assignment_is_refused() -> None:
    with pytest.raises(ParamInvalidError, match="more than once"):
        parse_assignments(["a=1", "a=2"])


# -- broken catalogs: each names the file and the line -------------------------------------

def _write(project: Path, mutate: Any) -> Path:
    doc = yaml.safe_load((REPO / "catalog.yml").read_text())
    mutate(doc)
    path = project / "catalog.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


BROKEN = {
    "unknown action key": (lambda d: d["actions"]["health"].update(colour="red"),
                           "unknown key(s) 'colour'"),
    "unknown risk": (lambda d: d["actions"]["health"].update(risk="SCARY"), "at actions/health/risk"),
    "missing playbook": (lambda d: d["actions"]["health"].update(playbook="playbooks/nope.yml"),
                         "does not exist"),
    "playbook outside": (lambda d: d["actions"]["health"].update(playbook="../x.yml"),
                         "at actions/health/playbook"),
    "unconstrained string": (lambda d: d["actions"]["health"]["params"]["properties"].update(
        note={"type": "string", "description": "free"}), "at actions/health/params"),
    "reserved name": (lambda d: d["actions"]["health"]["params"]["properties"].update(
        ansible_become={"type": "boolean", "description": "x"}), "reserved"),
    "hostvars name": (lambda d: d["actions"]["health"]["params"]["properties"].update(
        hostvars={"type": "boolean", "description": "x"}), "reserved"),
    "bad default": (lambda d: d["actions"]["health"]["params"]["properties"]["disk_max_percent"]
                    .update(default=500), "default does not satisfy"),
    "dangling rollback": (lambda d: d["actions"]["deploy"].update(rollback="undo"),
                          "rollback 'undo' is not an action"),
    "undefined required": (lambda d: d["actions"]["health"]["params"].update(required=["nope"]),
                           "required parameter 'nope'"),
    "narrowing other env": (lambda d: d["actions"]["health"].update(
        env_params={"qa": {"disk_max_percent": {"maximum": 50}}}), "not in environments"),
    "duplicate alias": (lambda d: d["actions"]["disk-report"].update(aliases=["health"]),
                        "already taken"),
    "wrong version": (lambda d: d.update(version=2), "at version"),
    "unanchored pattern": (lambda d: d["actions"]["backup"]["params"]["properties"]["label"]
                           .update(pattern="[a-z]+"), "must be anchored"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_catalog_is_refused_with_file_and_line(project: Path, case: str) -> None:
    mutate, message = BROKEN[case]
    path = _write(project, mutate)
    with pytest.raises(CatalogInvalidError) as err:
        Catalog.load(path, project)
    assert message in err.value.message
    assert re.match(rf"{re.escape(str(path))}:\d+: ", err.value.message), err.value.message
    assert err.value.status == 2


def test_line_number_points_at_the_unknown_key(project: Path) -> None:
    text = (REPO / "catalog.yml").read_text().replace(
        "    risk: LOW\n", "    risk: LOW\n    colour: red\n", 1)
    (project / "catalog.yml").write_text(text)
    line = text.splitlines().index("    colour: red") + 1
    with pytest.raises(CatalogInvalidError) as err:
        Catalog.load(project / "catalog.yml", project)
    assert f"catalog.yml:{line}: at actions/backup: unknown key(s) 'colour'" in err.value.message


def test_a_missing_catalog_says_how_to_get_a_project(tmp_path: Path) -> None:
    with pytest.raises(CatalogInvalidError) as caught:
        Catalog.load(tmp_path / "catalog.yml")
    assert "not an operations repository" in caught.value.message
    assert "autoops init DIR" in (caught.value.remedy or "")


# -- the quick parameter check: never more lenient than JSON Schema ----------------------

_PARAM_SPECS = st.one_of(
    st.fixed_dictionaries({"type": st.just("string"), "description": st.just("d")},
                          optional={"pattern": st.sampled_from(["^[a-z]+$", "^[0-9a-f]{4}$",
                                                                "^.*$", "a"]),
                                    "enum": st.lists(st.text(max_size=4), min_size=1,
                                                     max_size=3),
                                    "minLength": st.integers(0, 3),
                                    "maxLength": st.integers(1, 6)}),
    st.fixed_dictionaries({"type": st.sampled_from(["integer", "number"]),
                           "description": st.just("d")},
                          optional={"minimum": st.integers(-5, 5),
                                    "maximum": st.integers(-5, 10),
                                    "enum": st.lists(st.integers(-3, 3), min_size=1,
                                                     max_size=3)}),
    st.fixed_dictionaries({"type": st.just("boolean"), "description": st.just("d")}),
)
_VALUES = st.one_of(st.text(max_size=6), st.integers(-10, 10), st.booleans(),
                    st.floats(allow_nan=True), st.none(), st.lists(st.integers(), max_size=2))


@settings(max_examples=500)
@given(specs=st.dictionaries(st.sampled_from(["a", "b", "c"]), _PARAM_SPECS, min_size=1),
       values=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _VALUES),
       required=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True))
def test_the_quick_check_accepts_nothing_json_schema_refuses(
        specs: dict[str, Any], values: dict[str, Any], required: list[str]) -> None:
    import jsonschema

    schema = {"type": "object", "properties": specs, "additionalProperties": False,
              "required": [r for r in required if r in specs]}
    if catalog_module.quick_valid(values, schema):
        assert not list(jsonschema.Draft202012Validator(schema).iter_errors(values))


def test_the_quick_check_passes_what_catalog_actions_take_every_day() -> None:
    catalog = Catalog.load(REPO / "catalog.yml", REPO)
    cases: list[tuple[str, dict[str, Any]]] = [("health", {"disk_max_percent": 90}),
                                               ("restart-service", {"service": "nginx"}),
                                               ("backup", {"label": "nightly"})]
    for name, params in cases:
        action = catalog.get(name)
        full = {k: v["default"] for k, v in action.schema_for(None)["properties"].items()
                if "default" in v} | params
        assert catalog_module.quick_valid(full, action.schema_for(None)), name
