"""Signed pre-authorisation grants: keys, issue, list, show, revoke — each one audited."""

from __future__ import annotations

from typing import Any

from autoops.common import durations
from autoops.core.risk import Risk
from autoops.errors import BadInputError, GrantMalformedError
from autoops.guard import grants
from autoops.services.context import Context, reason_line


class Grants:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def init_keys(self, env: str | None) -> list[dict[str, Any]]:
        """An Ed25519 signing key for ``env`` (or every environment); existing ones are kept."""
        ctx = self.ctx
        envs = [ctx.scope(env)] if env else list(ctx.policy.environments)
        done = ctx.grant_store.init_keys(envs)
        for key in done:
            if key["created"]:
                ctx.record_admin("grant.keys_created", key["env"], {
                    "key_id": key["key_id"], "public_key": key["public_key"]}, action="grant")
        return done

    def create(self, *, env: str, actions: list[str], max_risk: str, hosts: str | None,
               params: list[str], expires_in: str, uses: int | None, break_glass: bool,
               reason: str, actor: str | None = None) -> dict[str, Any]:
        """Issue and sign a grant; its token is the bearer credential runs present (--grant)."""
        ctx = self.ctx
        ctx.scope(env)
        names = [ctx.catalog.get(a).name for a in actions]
        try:
            risk = Risk.parse(max_risk)
        except ValueError as exc:
            raise BadInputError(f"--max-risk: {exc}") from None
        try:
            grant, token = ctx.grant_store.create(
                env=env, actions=names, max_risk=risk, hosts=hosts,
                params=grants.parse_param_constraints(params),
                expires_in=durations.parse_duration(expires_in), uses=uses,
                break_glass=break_glass, reason=reason_line(reason), issuer=ctx.actor(actor))
        except (GrantMalformedError, ValueError) as exc:  # an option, not a token, is wrong
            raise BadInputError(f"grant create: {exc}",
                                remedy="`autoops grant create --help` shows each option's form.",
                                ) from None
        doc = grant.to_dict()
        ctx.record_admin("grant.created", env, doc, action="grant", actor=grant.issuer)
        return {"grant": doc, "token": token}

    def listing(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        return self.ctx.grant_store.listing(active_only=active_only)

    def show(self, id_or_token: str) -> dict[str, Any]:
        return self.ctx.grant_store.show(id_or_token)

    def revoke(self, grant_id: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        ctx = self.ctx
        who = ctx.actor(actor)
        row = ctx.grant_store.revoke(grant_id, who, reason_line(reason))
        ctx.record_admin("grant.revoked", row.env, {"grant_id": row.grant_id,
                                                    "reason": row.revoke_reason},
                         action="grant", actor=who)
        return ctx.grant_store.describe(row, ctx.clock())
