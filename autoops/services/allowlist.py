"""The allowlist as people read it (``autoops list`` and ``show``), without the engine.

Listing the catalog must be quick, so these need only the catalog, the policy and the
halts in force: no audit log, secrets, runner or front door is loaded for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from autoops.core import policy
from autoops.core.catalog import Action, Catalog, verdicts
from autoops.core.policy import HaltFacts, Policy
from autoops.settings import Settings


def summary(catalog: Catalog) -> list[dict[str, Any]]:
    """The allowlist, as ``autoops list`` shows it."""
    return [{"name": a.name, "risk": a.risk.name, "environments": list(a.environments),
             "description": a.description, "aliases": list(a.aliases)}
            for a in catalog.actions.values()]


def details(action: Action, decisions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One action as ``autoops show`` documents it: schemas, and the policy per environment."""
    schemas = {"*": action.schema_for(None)} | {
        env: action.schema_for(env) for env in action.environments}
    return {
        "name": action.name, "description": action.description, "playbook": action.playbook,
        "risk": action.risk.name, "environments": list(action.environments),
        "check_mode": action.check_mode, "rollback": action.rollback,
        "aliases": list(action.aliases), "params_schema": schemas["*"],
        "params_schema_by_env": {k: v for k, v in schemas.items() if k != "*"},
        "policy": decisions}


def decisions(the_policy: Policy, action: Action, actor: str, now: datetime,
              halt_for: Callable[[str], HaltFacts | None]) -> dict[str, dict[str, Any]]:
    """What the policy says about ``action`` in every declared environment, now."""
    return {
        env: policy.evaluate(the_policy, policy.Request(
            env=env, action=action.name, risk=action.risk,
            action_environments=action.environments, actor=actor, check_mode=False,
            now=now, halt=halt_for(env))).to_dict()
        for env in the_policy.environments}


def listing(settings: Settings) -> list[dict[str, Any]]:
    """``autoops list``, from the settings alone."""
    return summary(Catalog.load(settings.catalog_path, settings.project_dir,
                                verdicts(settings.cache_dir)))


def describe(settings: Settings, name: str) -> tuple[Action, dict[str, Any]]:
    """``autoops show NAME``, from the settings alone (the halts come from state.db)."""
    from autoops.guard.halts import Halts  # noqa: PLC0415 - after the action is known
    from autoops.state.db import StateDB  # noqa: PLC0415

    found = verdicts(settings.cache_dir)
    action = Catalog.load(settings.catalog_path, settings.project_dir, found).get(name)
    the_policy = Policy.load(settings.policy_path, found)
    now = datetime.now(UTC)
    halts = Halts(StateDB(settings.db_path), lambda: now)
    return action, details(action, decisions(the_policy, action, settings.os_user, now,
                                             halts.for_env))
