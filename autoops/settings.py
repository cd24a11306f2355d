"""One frozen settings object: the only place that reads environment variables."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where autoops finds its content and keeps its state, and who is running it."""

    project_dir: Path
    state_dir: Path
    os_user: str
    python: Path
    search_path: str
    cache_dir: Path
    config_dir: Path
    # SOPS_AGE_KEY_FILE / SOPS_AGE_KEY override the per-environment key files (CI, AWX).
    age_key_file: Path | None = None
    age_key: str | None = field(default=None, repr=False)
    editor: str | None = None

    @property
    def catalog_path(self) -> Path:
        return self.project_dir / "catalog.yml"

    @property
    def policy_path(self) -> Path:
        return self.project_dir / "policy.yml"

    @property
    def inventories_dir(self) -> Path:
        return self.project_dir / "inventories"

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "audit" / "audit.jsonl"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def runs_dir(self) -> Path:
        """Parent of the per-run private data dirs (each 0700, removed after its run)."""
        return self.state_dir / "runs"

    @property
    def lab_dir(self) -> Path:
        """The lab's keys, known_hosts, record and (if autoops started one) Docker engine."""
        return self.state_dir / "lab"

    @property
    def age_keys_dir(self) -> Path:
        """Per-environment age private keys (0600), outside any repository."""
        return self.config_dir / "age"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``AUTOOPS_*`` / XDG variables.

        The project (catalog, policy, inventories, playbooks) is never looked up from
        the current directory: a stray catalog.yml in a hostile directory must not
        become the allowlist. It is ``$AUTOOPS_PROJECT_DIR`` or this source checkout.
        """
        env = os.environ if environ is None else environ
        project = Path(env.get("AUTOOPS_PROJECT_DIR") or _PACKAGE_ROOT).resolve()
        if env.get("AUTOOPS_STATE_DIR"):
            state = Path(env["AUTOOPS_STATE_DIR"])
        else:
            xdg = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "state")
            state = Path(xdg) / "autoops"
        return cls(
            project_dir=project,
            state_dir=state.expanduser().resolve(),
            os_user=_os_user(),
            python=Path(sys.executable),
            search_path=env.get("PATH", os.defpath),
            cache_dir=Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")) / ".cache")
            .expanduser() / "autoops",
            config_dir=Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")) / ".config")
            .expanduser() / "autoops",
            age_key_file=Path(env["SOPS_AGE_KEY_FILE"]).expanduser()
            if env.get("SOPS_AGE_KEY_FILE") else None,
            age_key=env.get("SOPS_AGE_KEY") or None,
            editor=env.get("VISUAL") or env.get("EDITOR") or None,
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"
