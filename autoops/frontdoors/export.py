"""``autoops export awx|semaphore``: the catalog as a front-end's job templates.

Generated from the catalog, never written by hand: one template per action and environment
the action may run in, with a survey from the action's parameters *for that environment*
(enum allowlists become the only choices, integer bounds min/max, required and defaults
kept). Nothing a template offers can get past the guard play, which checks the same schema
again, and nothing that would select tasks (tags, skips, arbitrary extra variables) is
offered at launch. AWX also gets a custom credential type: the environment's age key, the
grant token a run presents, and where autoops keeps its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autoops.core.catalog import Action, Catalog

CREDENTIAL_TYPE = "autoops"
_PROJECT_IN_EE = "/runner/project"  # where AWX's execution environments mount the project
# AWX's text answers are at most this long when a parameter sets no maxLength of its own.
_TEXT_MAX = 1024


def awx(catalog: Catalog, envs: Iterable[str], project: str = "autoops") -> dict[str, Any]:
    """AWX / AAP objects (API v2 shapes): the credential type and the job templates."""
    return {"credential_types": [awx_credential_type()],
            "job_templates": [awx_template(a, env, project) for a, env in _pairs(catalog, envs)]}


def awx_credential_type() -> dict[str, Any]:
    return {
        "name": CREDENTIAL_TYPE, "kind": "cloud",
        "description": "The environment's age key, a grant token, and autoops' state directory",
        "inputs": {
            "fields": [
                {"id": "age_key", "label": "age private key of this environment",
                 "type": "string", "secret": True, "multiline": True},
                {"id": "grant_token", "label": "autoops grant token (where a person is needed)",
                 "type": "string", "secret": True},
                {"id": "state_dir", "label": "autoops state directory (a persistent volume)",
                 "type": "string"},
            ],
            "required": ["age_key", "state_dir"],
        },
        "injectors": {
            "file": {"template.age_key": "{{ age_key }}"},
            "env": {"SOPS_AGE_KEY_FILE": "{{ tower.filename.age_key }}",
                    "AUTOOPS_STATE_DIR": "{{ state_dir }}",
                    "AUTOOPS_PROJECT_DIR": _PROJECT_IN_EE},
            "extra_vars": {"autoops_grant": "{{ grant_token }}"},
        },
    }


def awx_template(action: Action, env: str, project: str) -> dict[str, Any]:
    spec = awx_survey(action, env)
    return {
        "name": f"autoops {action.name} ({env})",
        "description": f"{action.description} [{action.risk.name}]",
        "job_type": "run", "project": project, "playbook": action.playbook,
        "inventory": env, "credentials": [CREDENTIAL_TYPE],
        "execution_environment": "autoops",
        "extra_vars": "---\n",
        # Launch may narrow the hosts (--limit, checked by the guard) and ask for check
        # mode where the action supports it; never tags, skips or free extra variables.
        "ask_limit_on_launch": True, "ask_job_type_on_launch": action.check_mode,
        "ask_variables_on_launch": False, "ask_tags_on_launch": False,
        "ask_skip_tags_on_launch": False, "ask_inventory_on_launch": False,
        "ask_credential_on_launch": False, "ask_execution_environment_on_launch": False,
        "job_tags": "", "skip_tags": "", "start_at_task": "", "allow_simultaneous": False,
        "survey_enabled": bool(spec["spec"]),
    } | ({"survey_spec": spec} if spec["spec"] else {})  # AWX refuses an empty spec


def awx_survey(action: Action, env: str) -> dict[str, Any]:
    """The survey spec (``{name, description, spec: [...]}``) of ``action`` in ``env``."""
    schema = action.schema_for(env)
    required = set(schema["required"])
    items = [_awx_question(name, prop, name in required)
             for name, prop in schema["properties"].items()]
    return {"name": f"{action.name} ({env})", "description": action.description, "spec": items}


def _awx_question(name: str, prop: Mapping[str, Any], required: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"variable": name, "question_name": name.replace("_", " "),
                            "question_description": str(prop.get("description", "")),
                            "required": required}
    kind = prop.get("type")
    if "enum" in prop:
        item.update(type="multiplechoice", choices=[str(v) for v in prop["enum"]])
    elif kind == "boolean":
        item.update(type="multiplechoice", choices=["true", "false"])
    elif kind == "integer":
        item.update(type="integer", min=prop.get("minimum"), max=prop.get("maximum"))
    elif kind == "number":
        item.update(type="float", min=prop.get("minimum"), max=prop.get("maximum"))
    else:
        item.update(type="text", min=int(prop.get("minLength", 1 if required else 0)),
                    max=int(prop.get("maxLength", _TEXT_MAX)))
    if "default" in prop:
        default = prop["default"]
        item["default"] = str(default).lower() if isinstance(default, bool) else default
    return {k: v for k, v in item.items() if v is not None}


def semaphore(catalog: Catalog, envs: Iterable[str]) -> dict[str, Any]:
    """Semaphore UI templates (v2.10 API shape) with ``survey_vars``; inventories by name."""
    return {"templates": [semaphore_template(a, env) for a, env in _pairs(catalog, envs)]}


def semaphore_template(action: Action, env: str) -> dict[str, Any]:
    schema = action.schema_for(env)
    required = set(schema["required"])
    return {
        "name": f"autoops {action.name} ({env})", "app": "ansible",
        "description": f"{action.description} [{action.risk.name}]",
        "playbook": action.playbook, "inventory": env, "environment": env,
        "arguments": "[]", "allow_override_args_in_task": False,
        "survey_vars": [_semaphore_var(name, prop, name in required)
                        for name, prop in schema["properties"].items()],
    }


def _semaphore_var(name: str, prop: Mapping[str, Any], required: bool) -> dict[str, Any]:
    var: dict[str, Any] = {"name": name, "title": name.replace("_", " "),
                           "description": str(prop.get("description", "")),
                           "required": required, "type": ""}
    if "enum" in prop:
        var.update(type="enum", values=[{"name": str(v), "value": str(v)} for v in prop["enum"]])
    elif prop.get("type") == "boolean":
        var.update(type="enum", values=[{"name": v, "value": v} for v in ("true", "false")])
    elif prop.get("type") == "integer":
        var["type"] = "int"
    return var


def _pairs(catalog: Catalog, envs: Iterable[str]) -> list[tuple[Action, str]]:
    wanted = list(envs)
    return [(action, env) for action in catalog.actions.values()
            for env in wanted if env in action.environments]
