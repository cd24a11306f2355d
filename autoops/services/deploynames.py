"""Which catalog actions the deploy service looks at: the engine asks before loading it."""

from __future__ import annotations

from autoops.deploy.promotion import GATED_ACTIONS

DEPLOY_ACTIONS = {"deploy": "deploy", "deploy-rollback": "rollback"}
"""Runs the deploy service records (and what each is), when they executed."""

__all__ = ["DEPLOY_ACTIONS", "GATED_ACTIONS"]
