"""Secrets commands: each change is audited by name (never by value), every check is local."""

from __future__ import annotations

from typing import Any

from autoops.errors import SecretsCheckFailedError
from autoops.secrets.store import MAX_VALUE_BYTES, Secrets, value_from_input
from autoops.services.context import Context


class SecretsAdmin:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def store(self) -> Secrets:
        """The environment's SOPS files and age keys (what runs decrypt from)."""
        return self.ctx.secret_store

    def init(self, env: str) -> dict[str, Any]:
        result = self.store.init(env)
        self.ctx.record_admin("secrets.initialised", env, {
            "fingerprint": result["fingerprint"], "file": result["file"],
            "key_created": result["key_created"], "file_created": result["file_created"]})
        return result

    def edit(self, env: str, file: str | None = None, *, terminal: bool) -> dict[str, Any]:
        """``terminal``: the caller has one (the CLI checks its streams; sops needs it)."""
        result = self.store.edit(env, file, terminal=terminal)
        if result["changed"]:  # names only: values never reach the log
            self.ctx.record_admin("secrets.edited", env, result)
        return result

    max_value_bytes = MAX_VALUE_BYTES
    """The longest value ``set`` takes (read at most one byte more, to tell it is too long)."""

    def set(self, env: str, name: str, value: str | bytes,
            file: str | None = None) -> dict[str, Any]:
        """Set one variable; bytes (as read from stdin) are checked and decoded first."""
        text = value_from_input(value) if isinstance(value, bytes) else value
        result = self.store.set_value(env, name, text, file)
        self.ctx.record_admin("secrets.set", env, {  # the name only, never the value
            k: result[k] for k in ("file", "name", "created")})
        return result

    def unset(self, env: str, name: str, file: str | None = None) -> dict[str, Any]:
        result = self.store.unset_value(env, name, file)
        self.ctx.record_admin("secrets.unset", env, {k: result[k] for k in ("file", "name")})
        return result

    def rotate(self, env: str, new_recipient: str | None = None,
               new_key: bool = False) -> dict[str, Any]:
        result = self.store.rotate(env, new_recipient, new_key)
        self.ctx.record_admin("secrets.rotated", env, {
            k: result[k] for k in ("files", "old_recipients", "new_recipients", "rekeyed",
                                   "retired_key")})
        return result

    def key_names(self, env: str) -> dict[str, Any]:
        """Each SOPS file of ``env`` and the variable names in it (values are never read out)."""
        return {"env": env, "files": self.store.key_names(env)}

    def check(self) -> dict[str, Any]:
        """Unencrypted, cross-environment or plaintext secrets in the project; raise if any."""
        from autoops.secrets import scan  # noqa: PLC0415 - detect-secrets loads slowly

        findings = scan.check(self.ctx.settings.project_dir)
        if findings:
            raise SecretsCheckFailedError(
                f"secrets check: {len(findings)} problem(s)",
                details={"ok": False, "findings": [f.to_dict() for f in findings]})
        return {"ok": True, "findings": []}
