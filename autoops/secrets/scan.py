"""``autoops secrets check``: the repository holds no secret except SOPS-encrypted ones.

Findings, each with a stable code:

- ``NOT-ENCRYPTED``: a ``*.sops.*`` file that is not (wholly) SOPS-encrypted;
- ``CROSS-ENV``: a file under ``inventories/ENV`` that another environment's rule
  would encrypt, or that is encrypted to anyone but ENV's recipients;
- ``SHARED-KEY``: two environments' rules share a recipient;
- ``UNSCOPED``: a SOPS file outside every ``inventories/ENV``;
- ``PLAINTEXT``: a secret found by detect-secrets, or an age or SSH/PEM private key,
  in any other tracked (or new, not ignored) file.

A line carrying ``pragma: allowlist secret`` is detect-secrets' own way to mark a
false positive; autoops honours it for its key patterns too.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoops.secrets import agekeys
from autoops.secrets.rules import CONFIG_NAME, SopsConfig
from autoops.secrets.store import age_recipients, is_sops_name, leaves, parse_document, sops_metadata

PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
ALLOWLIST = "pragma: allowlist secret"
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
              ".pytest_cache", ".hypothesis", ".tox", "build", "dist"}
_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.code}: {self.message}"


def repository_files(project: Path) -> list[Path]:
    """Tracked files plus new ones git does not ignore; every file without git."""
    if (project / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(project), "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"], capture_output=True, check=True, timeout=60).stdout
            names = sorted({n for n in out.decode(errors="surrogateescape").split("\0") if n})
            return [project / n for n in names if (project / n).is_file()
                    and not (project / n).is_symlink()]
        except (OSError, subprocess.SubprocessError):
            pass
    return sorted(p for p in _walk(project) if p.is_file() and not p.is_symlink())


def _walk(root: Path) -> Iterator[Path]:
    for path in root.iterdir():
        if path.is_dir() and not path.is_symlink():
            if path.name not in _SKIP_DIRS:
                yield from _walk(path)
        else:
            yield path


def check(project: Path, files: Iterable[Path] | None = None) -> list[Finding]:
    """Every finding for the repository at ``project`` (or just ``files`` in it)."""
    chosen = list(files) if files is not None else repository_files(project)
    config = SopsConfig.load(project / CONFIG_NAME)
    findings = list(_config_findings(config, project))
    plain = []
    for path in chosen:
        rel = str(path.relative_to(project))
        if is_sops_name(path.name):
            findings += _sops_findings(path, rel, config)
        else:
            if rel != CONFIG_NAME:  # public recipients only; detect-secrets calls them entropy
                plain.append(path)
            findings += _key_findings(path, rel)
    findings += _detect_secrets(project, plain)
    return sorted(set(findings), key=lambda f: (f.file, f.line or 0, f.code, f.message))


def _config_findings(config: SopsConfig, project: Path) -> Iterator[Finding]:
    rel = str(config.path.relative_to(project))
    seen: dict[str, str] = {}
    for env in config.environments():
        for recipient in config.recipients(env):
            if recipient in seen and seen[recipient] != env:
                yield Finding(rel, None, "SHARED-KEY",
                              f"{seen[recipient]} and {env} share the recipient "
                              f"{agekeys.fingerprint(recipient)}; environments share no key")
            seen.setdefault(recipient, env)


def _sops_findings(path: Path, rel: str, config: SopsConfig) -> list[Finding]:
    try:
        doc = parse_document(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(rel, None, "NOT-ENCRYPTED", f"cannot be read: {exc}")]
    meta = sops_metadata(doc)
    if meta is None:
        return [Finding(rel, None, "NOT-ENCRYPTED",
                        "has no SOPS metadata: it is plaintext (encrypt it with "
                        "`autoops secrets edit`, then rotate what it held)")]
    suffix = str(meta.get("unencrypted_suffix") or "")
    findings = [Finding(rel, None, "NOT-ENCRYPTED", f"value {name!r} is not encrypted")
                for name, value in leaves(doc)
                if not (isinstance(value, str) and value.startswith("ENC[AES256_GCM,"))
                and not (suffix and any(p.endswith(suffix) for p in name.split(".")))]
    parts = Path(rel).parts
    if len(parts) < 3 or parts[0] != "inventories":
        return [*findings, Finding(rel, None, "UNSCOPED",
                                   "SOPS files belong under inventories/ENV/")]
    env = parts[1]
    rule_env = config.rule_env_for(rel)
    if rule_env != env:
        findings.append(Finding(rel, None, "CROSS-ENV",
                                f"is in {env}'s inventory but sops-rules.yaml gives it "
                                f"{rule_env or 'no'} rule"))
    own = set(config.recipients(env))
    for recipient in age_recipients(meta):
        if recipient not in own:
            owners = config.owner_of(recipient)
            whose = f"{', '.join(owners)}'s" if owners else "an unknown"
            findings.append(Finding(rel, None, "CROSS-ENV",
                                    f"is encrypted to {whose} recipient "
                                    f"{agekeys.fingerprint(recipient)}, not only {env}'s"))
    if not age_recipients(meta):
        findings.append(Finding(rel, None, "CROSS-ENV", "has no age recipient"))
    return findings


def _key_findings(path: Path, rel: str) -> list[Finding]:
    text = _text(path)
    if text is None:
        return []
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        if ALLOWLIST in line:
            continue
        if agekeys.SECRET_KEY_PATTERN.search(line):
            findings.append(Finding(rel, number, "PLAINTEXT", "an age private key"))
        if PRIVATE_KEY.search(line):
            findings.append(Finding(rel, number, "PLAINTEXT", "a private key (SSH/PEM)"))
    return findings


def _text(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _detect_secrets(project: Path, files: list[Path]) -> list[Finding]:
    from detect_secrets.core.secrets_collection import SecretsCollection  # noqa: PLC0415
    from detect_secrets.settings import default_settings  # noqa: PLC0415

    collection = SecretsCollection(root=str(project))
    with default_settings():
        for path in files:
            if _text(path) is not None:
                collection.scan_file(str(path.relative_to(project)))
    return [Finding(str(name), secret.line_number, "PLAINTEXT",
                    f"{secret.type} (detect-secrets)") for name, secret in collection]
