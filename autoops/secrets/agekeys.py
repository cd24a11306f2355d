"""Per-environment age keys: generated here, kept outside the repository (0600).

Each environment has its own key file under the user's config directory
(``~/.config/autoops/age/ENV.txt``, the same format as ``age-keygen``) unless
``SOPS_AGE_KEY_FILE`` or ``SOPS_AGE_KEY`` says otherwise, as it does in CI or AWX.
Only public recipients and their fingerprints ever leave this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyrage

from autoops.common.files import create_private
from autoops.errors import SecretsInvalidError, SecretsKeyMissingError
from autoops.secrets.sops import AgeKey
from autoops.settings import Settings

SECRET_KEY_PATTERN = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")
RECIPIENT_PATTERN = re.compile(r"age1[02-9ac-hj-np-z]{58}")


def fingerprint(recipient: str) -> str:
    """A short, stable name for a recipient in audit records and messages."""
    return "sha256:" + hashlib.sha256(recipient.encode()).hexdigest()[:16]


def generate() -> tuple[str, str]:
    """A new identity: (private key text, public recipient)."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipients_of(key_text: str) -> list[str]:
    """The public recipients of every private key in an age key file's text."""
    return [r for secret in SECRET_KEY_PATTERN.findall(key_text)
            if (r := _recipient(secret)) is not None]


def _recipient(secret: str) -> str | None:
    try:
        return str(pyrage.x25519.Identity.from_str(secret).to_public())
    except Exception:  # noqa: BLE001 - pyrage raises its own error types
        return None


@dataclass(frozen=True)
class KeyRef:
    """Which key an environment uses and where it comes from."""

    env: str
    path: Path | None  # None: the key is in SOPS_AGE_KEY
    source: str  # "default", "SOPS_AGE_KEY_FILE" or "SOPS_AGE_KEY"
    _inline: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings: Settings, env: str) -> KeyRef:
        if settings.age_key_file is not None:
            return cls(env, settings.age_key_file, "SOPS_AGE_KEY_FILE")
        if settings.age_key:
            return cls(env, None, "SOPS_AGE_KEY", settings.age_key)
        return cls(env, settings.age_keys_dir / f"{env}.txt", "default")

    @property
    def origin(self) -> str:
        return f"$SOPS_AGE_KEY_FILE ({self.path})" if self.source == "SOPS_AGE_KEY_FILE" else (
            "$SOPS_AGE_KEY" if self.path is None else str(self.path))

    def exists(self) -> bool:
        return self.path is None or self.path.is_file()

    def text(self) -> str:
        if self.path is None:
            return self._inline or ""
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretsKeyMissingError(
                f"no age key for {self.env}: {self.path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsInvalidError(f"cannot read the age key {self.path}: {exc}") from None

    def recipients(self) -> list[str]:
        found = recipients_of(self.text())
        if not found:
            raise SecretsInvalidError(f"{self.origin} holds no age private key",
                                      remedy="Point it at a file written by `age-keygen` or "
                                             "`autoops secrets init`.")
        return found

    def for_sops(self) -> AgeKey:
        if not self.exists():
            raise SecretsKeyMissingError(f"no age key for {self.env}: {self.origin} does not exist")
        if self.path is None:
            return AgeKey(inline=self._inline, origin=self.origin)
        return AgeKey(file=self.path, origin=self.origin)


def write_private(path: Path, key_text: str, recipient: str, now: datetime) -> None:
    """Create an age key file; never overwrite one."""
    create_private(path, (f"# created: {now.isoformat(timespec='seconds')}\n"
                          f"# public key: {recipient}\n{key_text}\n").encode())


def retire(path: Path, now: datetime) -> Path:
    """Move a replaced key aside (still 0600) so the operator can destroy it deliberately."""
    retired = path.with_name(f"{path.stem}.retired-{now.strftime('%Y%m%dT%H%M%SZ')}{path.suffix}")
    path.replace(retired)
    with contextlib.suppress(OSError):
        retired.chmod(0o600)
    return retired
