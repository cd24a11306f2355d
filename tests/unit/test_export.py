"""Generated AWX and Semaphore objects follow their sources' rules (held as schemas here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from autoops.core.catalog import Catalog
from autoops.core.policy import Policy
from autoops.frontdoors import export

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "tests" / "schemas"
CATALOG = Catalog.load(REPO / "catalog.yml", REPO)
ENVS = list(Policy.load(REPO / "policy.yml").environments)


def schema(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def test_every_awx_survey_and_the_credential_type_validate() -> None:
    doc = export.awx(CATALOG, ENVS)
    survey, credential = schema("awx_survey_spec.json"), schema("awx_credential_type.json")
    for cred in doc["credential_types"]:
        jsonschema.validate(cred, credential)
        ids = {f["id"] for f in cred["inputs"]["fields"]}
        assert set(cred["inputs"]["required"]) <= ids
    names = [t["name"] for t in doc["job_templates"]]
    assert len(names) == len(set(names))
    for template in doc["job_templates"]:
        assert template["survey_enabled"] == ("survey_spec" in template)
        if "survey_spec" in template:
            jsonschema.validate(template["survey_spec"], survey)
            _awx_semantics(template["survey_spec"]["spec"])


def _awx_semantics(items: list[dict[str, Any]]) -> None:
    """What AWX checks beyond shape: unique variables, defaults that fit their question."""
    variables = [i["variable"] for i in items]
    assert len(variables) == len(set(variables))
    for item in items:
        if "min" in item and "max" in item:
            assert item["min"] <= item["max"]
        if "default" not in item:
            continue
        default = item["default"]
        if item["type"] == "multiplechoice":
            assert default in item["choices"]
        elif item["type"] in {"integer", "float"}:
            assert item.get("min", default) <= default <= item.get("max", default)
        else:
            assert item.get("min", 0) <= len(default) <= item.get("max", len(default))


def test_every_semaphore_template_validates() -> None:
    rules = schema("semaphore_template.json")
    for template in export.semaphore(CATALOG, ENVS)["templates"]:
        jsonschema.validate(template, rules)


def test_surveys_carry_each_environments_allowlist() -> None:
    doc = export.awx(CATALOG, ["staging", "local"])
    by_name = {t["name"]: t for t in doc["job_templates"]}
    staging = by_name["autoops restart-service (staging)"]["survey_spec"]["spec"]
    local = by_name["autoops restart-service (local)"]["survey_spec"]["spec"]
    assert staging == [{"variable": "service", "question_name": "service", "required": True,
                        "question_description": staging[0]["question_description"],
                        "type": "multiplechoice", "choices": ["nginx", "app"]}]
    assert local[0]["choices"] == ["autoops-demo"]
    health = by_name["autoops health (staging)"]["survey_spec"]["spec"]
    assert {i["variable"]: (i["type"], i["min"], i["max"], i["default"]) for i in health} == {
        "disk_max_percent": ("integer", 1, 100, 90), "mem_max_percent": ("integer", 1, 100, 95)}


def test_templates_offer_nothing_that_selects_tasks_or_adds_variables() -> None:
    for template in export.awx(CATALOG, ENVS)["job_templates"]:
        assert not any(template[k] for k in ("ask_tags_on_launch", "ask_skip_tags_on_launch",
                                             "ask_variables_on_launch", "job_tags", "skip_tags",
                                             "start_at_task", "ask_inventory_on_launch"))
        action = CATALOG.get(template["playbook"].split("/")[-1].removesuffix(".yml"))
        assert template["ask_job_type_on_launch"] == action.check_mode
    for template in export.semaphore(CATALOG, ENVS)["templates"]:
        assert template["arguments"] == "[]"
        assert not template["allow_override_args_in_task"]


@pytest.mark.parametrize("env", ENVS)
def test_only_the_actions_allowed_in_an_environment_are_exported(env: str) -> None:
    exported = {t["playbook"] for t in export.awx(CATALOG, [env])["job_templates"]}
    assert exported == {a.playbook for a in CATALOG.actions.values() if env in a.environments}
