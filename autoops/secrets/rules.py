"""``sops-rules.yaml``: one creation rule per environment, matching only its own paths.

sops matches ``path_regex`` against the path relative to ``sops-rules.yaml`` and uses the
first rule that matches, so a rule anchored at ``^inventories/ENV/`` can never pick
up another environment's file. autoops writes the rules it owns and keeps any other
rule an operator added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autoops.common.files import write_atomic
from autoops.errors import SecretsInvalidError

# Not `.sops.yaml`: that name reads as a SOPS data file (`*.sops.*`) to scanners and
# hooks. autoops always passes it to sops with --config.
CONFIG_NAME = "sops-rules.yaml"
RULE_PATTERN = r"^inventories/{env}/.*\.sops\.(ya?ml|json)$"
_ENV_OF_RULE = re.compile(r"\^inventories/([a-z][a-z0-9_-]*)/\.\*\\\.sops\\\.\(ya\?ml\|json\)\$")
HEADER = """\
---
# SOPS creation rules: one per environment, written by `autoops secrets init` and
# `autoops secrets rotate`. Each rule matches only its environment's files and holds
# only that environment's age recipient: staging and production share no key.
"""


def env_rule_regex(env: str) -> str:
    return RULE_PATTERN.format(env=env)


@dataclass(frozen=True)
class SopsConfig:
    path: Path
    rules: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path) -> SopsConfig:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, yaml.YAMLError) as exc:
            raise SecretsInvalidError(f"{path}: cannot be read: {exc}") from None
        doc = {} if doc is None else doc
        rules = (doc.get("creation_rules") or []) if isinstance(doc, dict) else None
        if not isinstance(rules, list) or not all(
                isinstance(r, dict) and isinstance(r.get("path_regex", ""), str) for r in rules):
            raise SecretsInvalidError(f"{path}: creation_rules must be a list of rules")
        return cls(path, tuple(rules))

    def env_of(self, rule: dict[str, Any]) -> str | None:
        match = _ENV_OF_RULE.fullmatch(str(rule.get("path_regex", "")))
        return match.group(1) if match else None

    def recipients(self, env: str) -> list[str]:
        """The age recipients of ``env``'s own rule (empty when it has none)."""
        for rule in self.rules:
            if self.env_of(rule) == env:
                return [r.strip() for r in str(rule.get("age", "")).split(",") if r.strip()]
        return []

    def environments(self) -> list[str]:
        return [env for rule in self.rules if (env := self.env_of(rule)) is not None]

    def owner_of(self, recipient: str) -> list[str]:
        return [env for env in self.environments() if recipient in self.recipients(env)]

    def rule_env_for(self, relpath: str) -> str | None:
        """The environment whose rule sops would use for ``relpath`` (the first match)."""
        for rule in self.rules:
            try:
                if re.search(str(rule.get("path_regex", "")), relpath):
                    return self.env_of(rule) or "(another rule)"
            except re.error:
                continue
        return None

    def with_env(self, env: str, recipients: Sequence[str]) -> SopsConfig:
        """This config with ``env``'s rule set to exactly ``recipients``."""
        rule = {"path_regex": env_rule_regex(env), "age": ",".join(recipients)}
        rules = [r for r in self.rules if self.env_of(r) != env]
        # Environment rules go first so no broader rule an operator added shadows them.
        envs = [r for r in rules if self.env_of(r) is not None]
        others = [r for r in rules if self.env_of(r) is None]
        ordered = sorted([*envs, rule], key=lambda r: str(self.env_of(r)))
        return SopsConfig(self.path, (*ordered, *others))

    def save(self) -> None:
        text = HEADER + yaml.safe_dump({"creation_rules": list(self.rules)}, sort_keys=False,
                                       width=200)
        write_atomic(self.path, text.encode(), mode=0o644)
