"""Grants on this machine: signing keys, issuing, first sight, uses and revocation.

``grants`` holds the token format and the checks that need no state; this module
keeps what does, in state.db: each grant seen (created here or presented by a run),
how many runs used it and whether it was revoked. A use is counted in the same
transaction that checks revocation and the remaining uses, so two runs cannot both
take a grant's last use and a revoked grant never runs again.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autoops.common.files import create_private
from autoops.core.policy import Policy
from autoops.core.risk import Risk
from autoops.errors import (
    GrantExhaustedError,
    GrantKeyError,
    GrantRevokedError,
    GrantUnknownError,
)
from autoops.guard import grants
from autoops.guard.grants import Grant
from autoops.settings import Settings
from autoops.state.db import StateDB
from autoops.state.grants import GrantRow

PUBLIC_DIR = "grant-keys"


class GrantState(enum.StrEnum):
    """What a grant is now (derived from its record and the clock, never stored)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    REVOKED = "revoked"


@dataclass
class GrantStore:
    settings: Settings
    db: StateDB
    policy: Policy
    clock: Callable[[], datetime]

    def private_path(self, env: str) -> Path:
        return self.settings.config_dir / "grants" / f"{env}.key"

    def public_path(self, env: str) -> Path:
        return self.settings.project_dir / PUBLIC_DIR / f"{env}.pub"

    # -- keys -------------------------------------------------------------------------

    def init_keys(self, envs: Sequence[str]) -> list[dict[str, Any]]:
        """Create each environment's Ed25519 signing key, idempotently.

        The private key goes to the config directory (0600, never the repository), the
        public key to grant-keys/ENV.pub, to be committed. A public key without its
        private key here is another machine's: it is never replaced silently.
        """
        done = []
        for env in envs:
            private, public = self.private_path(env), self.public_path(env)
            if private.exists():
                derived = grants.public_of(private.read_bytes())
                if public.exists() and public.read_bytes() != derived:
                    raise GrantKeyError(f"{private} does not match {public}",
                                        remedy=f"Restore the matching key pair for {env}, or "
                                               "remove both and run init-keys again.")
                created = not public.exists()
                if created:
                    _write_public(public, derived)
                done.append(self._key_doc(env, created=False, public_written=created))
                continue
            if public.exists():
                raise GrantKeyError(
                    f"{public} exists but its private key is not on this machine ({private})",
                    remedy="Sign grants where the private key lives, or remove the public key "
                           "(invalidating its grants) and run init-keys again.")
            private_pem, public_pem = grants.generate_keypair()
            create_private(private, private_pem)
            _write_public(public, public_pem)
            done.append(self._key_doc(env, created=True, public_written=True))
        return done

    def _key_doc(self, env: str, *, created: bool, public_written: bool) -> dict[str, Any]:
        return {"env": env, "key_id": grants.key_id(self.public_path(env).read_bytes()),
                "private_key": str(self.private_path(env)),
                "public_key": str(self.public_path(env)), "created": created,
                "public_written": public_written}

    def public_keys(self) -> dict[str, bytes]:
        return {env: self.public_path(env).read_bytes() for env in self.policy.environments
                if self.public_path(env).is_file()}

    # -- issuing ----------------------------------------------------------------------

    def create(self, *, env: str, actions: Sequence[str], max_risk: Risk, hosts: str | None,
               params: Mapping[str, tuple[str, ...]], expires_in: timedelta, uses: int | None,
               break_glass: bool, reason: str, issuer: str) -> tuple[Grant, str]:
        private = self.private_path(env)
        if not private.is_file() or not self.public_path(env).is_file():
            raise GrantKeyError(f"no grant signing key for {env} on this machine ({private})")
        public_pem = self.public_path(env).read_bytes()
        env_policy = self.policy.environments[env]
        grant = grants.new_grant(
            env=env, actions=actions, max_risk=max_risk, hosts=hosts, params=params,
            issued=self.clock(), expires_in=expires_in, uses=uses, break_glass=break_glass,
            reason=reason, issuer=issuer, key_id=grants.key_id(public_pem),
            ceiling=env_policy.grant_ceiling(max_risk, break_glass))
        token = grants.sign(grant, private.read_bytes())
        self._remember(grant, token)
        return grant, token

    # -- presenting -------------------------------------------------------------------

    def resolve(self, token_or_id: str) -> tuple[Grant, str]:
        """A genuine grant from a token (or the id of one this machine has seen)."""
        text = token_or_id.strip()
        if re.fullmatch(grants.GRANT_ID, text):
            row = self.db.grants.get(text)
            if row is None:
                raise GrantUnknownError(f"this machine has never seen grant {text}")
            text = row.token
        grant = grants.verify(text, self.public_keys())
        self._remember(grant, text)
        return grant, text

    def check(self, grant: Grant, now: datetime) -> GrantRow:
        """Unexpired (within today's policy ceiling), unrevoked, with a use left."""
        grants.check_time(grant, now, self.policy.environments[grant.env].grant_ceiling(
            grant.max_risk, grant.break_glass))
        row = self.db.grants.get(grant.id)
        if row is None:  # pragma: no cover - resolve() remembers every grant it returns
            raise GrantUnknownError(f"grant {grant.id} is not recorded")
        _usable(row)
        return row

    def use(self, grant: Grant, run_id: str, now: datetime) -> int:
        """Count one use (atomically with the revocation and uses check); the use number."""
        self.check(grant, now)
        row, counted = self.db.grants.use(grant.id, run_id, now.isoformat())
        if row is None:
            raise GrantUnknownError(f"grant {grant.id} is not recorded")
        if not counted:  # revoked or used up since check(): say which
            _usable(row)
        return row.uses + 1

    def revoke(self, grant_id: str, actor: str, reason: str) -> GrantRow:
        row = self.db.grants.get(grant_id) if re.fullmatch(grants.GRANT_ID, grant_id) else None
        if row is None:
            raise GrantUnknownError(f"this machine has never seen grant {grant_id!r}",
                                    remedy="Revoke where the grant was created or used, or run "
                                           "`autoops grant show TOKEN` here first.")
        if not self.db.grants.revoke(grant_id, self.clock().isoformat(), actor, reason):
            raise GrantRevokedError(f"{grant_id} was already revoked by {row.revoked_by} "
                                    f"({row.revoke_reason})")
        found = self.db.grants.get(grant_id)
        assert found is not None  # noqa: S101 - just revoked it
        return found

    def describe(self, row: GrantRow, now: datetime) -> dict[str, Any]:
        grant, _payload, _sig = grants.parse_token(row.token)
        expired = now >= grant.expires
        exhausted = row.max_uses is not None and row.uses >= row.max_uses
        state = (GrantState.REVOKED if row.revoked else GrantState.EXPIRED if expired
                 else GrantState.EXHAUSTED if exhausted else GrantState.ACTIVE)
        return {**grant.to_dict(), "state": state, "used": row.uses,
                "revoked": row.revoked, "revoked_by": row.revoked_by,
                "revoke_reason": row.revoke_reason}

    def listing(self, *, active_only: bool) -> list[dict[str, Any]]:
        now = self.clock()
        docs = [self.describe(row, now) for row in self.db.grants.all()]
        return [d for d in docs if d["state"] == GrantState.ACTIVE or not active_only]

    def show(self, token_or_id: str) -> dict[str, Any]:
        grant, _token = self.resolve(token_or_id)
        row = self.db.grants.get(grant.id)
        assert row is not None  # noqa: S101 - resolve() remembered it
        return self.describe(row, self.clock())

    def _remember(self, grant: Grant, token: str) -> None:
        self.db.grants.remember(GrantRow(
            grant_id=grant.id, env=grant.env, token=token, expires=grant.expires.isoformat(),
            max_uses=grant.uses, recorded=self.clock().isoformat(), revoked=None,
            revoked_by=None, revoke_reason=None))


def _usable(row: GrantRow) -> None:
    if row.revoked:
        raise GrantRevokedError(f"grant {row.grant_id} was revoked by {row.revoked_by} at "
                                f"{row.revoked}: {row.revoke_reason}")
    if row.max_uses is not None and row.uses >= row.max_uses:
        raise GrantExhaustedError(f"grant {row.grant_id} has been used {row.uses} of "
                                  f"{row.max_uses} time(s)")


def _write_public(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o644)
