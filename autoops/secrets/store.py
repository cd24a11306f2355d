"""Per-environment secrets: SOPS files under ``inventories/ENV``, opened only with ENV's key.

Playbooks read them through community.sops' vars plugin, inside ansible-playbook,
like any group_vars. Before a run executes, :meth:`Secrets.load_for_run` proves
that every file is encrypted to this environment's recipient and nobody else's,
decrypts it in memory (a pipe from sops) and hands the values to the redactor.
Nothing here writes plaintext to a file, prints a value or puts one in an argv.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from autoops.common.files import write_atomic
from autoops.common.names import SECRET_NAME
from autoops.core.inventory import inventory_path
from autoops.errors import (
    BadInputError,
    SecretsCrossEnvError,
    SecretsInvalidError,
    SecretsKeyMissingError,
    SecretsNameUnknownError,
    SecretsNoTerminalError,
)
from autoops.secrets import agekeys
from autoops.secrets.agekeys import KeyRef
from autoops.secrets.rules import CONFIG_NAME, SopsConfig
from autoops.secrets.sops import AgeKey, Sops
from autoops.secrets.sops import binary as sops_binary
from autoops.settings import Settings

SECRETS_FILE = Path("group_vars") / "all" / "secrets.sops.yml"
SOPS_SUFFIXES = (".sops.yml", ".sops.yaml", ".sops.json")
MIN_MASKABLE = 4  # the redactor does not mask shorter values (it would mangle text)
MAX_VALUE_BYTES = 1 << 20  # `secrets set`: a value, not a data set

# `secrets set` names: Ansible variables that shadow nothing Ansible or autoops defines.
RESERVED_PREFIXES = ("ansible_", "autoops_")
# Ansible's magic variables and its reserved names (ansible.vars.reserved, 2.19).
RESERVED_NAMES = frozenset((
    "hostvars", "groups", "group_names", "inventory_hostname", "inventory_hostname_short",
    "inventory_dir", "inventory_file", "omit", "play_hosts", "playbook_dir", "role_name",
    "role_names", "role_path", "environment", "action", "always", "any_errors_fatal", "args",
    "async", "async_val", "become", "become_exe", "become_flags", "become_method", "become_user",
    "block", "changed_when", "check_mode", "collections", "connection", "cycler", "debugger",
    "delay", "delegate_facts", "delegate_to", "dict", "diff", "fact_path", "failed_when",
    "force_handlers", "gather_facts", "gather_timeout", "handlers", "hosts", "ignore_errors",
    "ignore_unreachable", "joiner", "lipsum", "local_action", "lookup", "loop", "loop_control",
    "loop_with", "max_fail_percentage", "module_defaults", "name", "namespace", "no_log", "notify",
    "now", "order", "poll", "port", "post_tasks", "pre_tasks", "q", "query", "range", "register",
    "remote_user", "rescue", "retries", "roles", "run_once", "serial", "strategy", "tags", "tasks",
    "throttle", "timeout", "undef", "until", "vars", "vars_files", "vars_prompt", "when", "with_",
))

# A new file's content. sops shows an empty mapping as `{}`, which the first added
# `name: value` line breaks, so the mapping holds a placeholder (a boolean: never a
# value to redact) under comments that show the form.
PLACEHOLDER = "autoops_placeholder"


def initial_document(env: str) -> str:
    return (f"# {env}'s secrets, encrypted by sops. One `name: value` per line; each name is\n"
            "# an Ansible variable that playbooks use as {{ name }}. For example:\n"
            "# db_password: change-me\n"  # pragma: allowlist secret
            f"# {PLACEHOLDER} only keeps this mapping from being empty (sops would show\n"
            "# `{}`, which an added line breaks); delete it once a real name is here.\n"
            f"{PLACEHOLDER}: true\n")


def is_sops_name(name: str) -> bool:
    return name.endswith(SOPS_SUFFIXES)


def value_from_input(data: bytes) -> str:
    """A value as piped to ``secrets set``: UTF-8, one trailing newline dropped (echo's)."""
    if len(data) > MAX_VALUE_BYTES:
        raise BadInputError(f"the value is longer than {MAX_VALUE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError("the value on stdin is not UTF-8 text") from None
    return text.removesuffix("\n")


def checked_name(name: str) -> str:
    """A variable name ``secrets set`` may write, or BadInputError."""
    if not re.fullmatch(SECRET_NAME, name):
        raise BadInputError(f"{name!r} is not a variable name",
                            remedy="Use lower-case letters, digits and _ (at most 64, not "
                                   "starting with a digit), e.g. db_password.")
    if name.startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
        raise BadInputError(f"{name!r} would shadow a name Ansible or autoops defines",
                            remedy="Choose another name, e.g. with the app's name in front "
                                   "(myapp_db_password).")
    return name


def parse_document(text: str) -> Any:
    """A SOPS file as data (YAML is a superset of JSON); None when it is not parseable."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def sops_metadata(doc: Any) -> dict[str, Any] | None:
    """The ``sops`` block of an encrypted document, or None when it is not one."""
    if not isinstance(doc, dict):
        return None
    meta = doc.get("sops")
    return meta if isinstance(meta, dict) and meta.get("mac") else None


def age_recipients(meta: dict[str, Any]) -> list[str]:
    return [str(entry.get("recipient")) for entry in meta.get("age") or []
            if isinstance(entry, dict) and entry.get("recipient")]


def leaves(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, value) for every scalar in a document, skipping the sops block."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if not prefix and key == "sops":
                continue
            yield from leaves(value, f"{prefix}{key}.")
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from leaves(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), doc


@dataclass(frozen=True)
class EnvSecrets:
    """What a run of one environment loaded; ``values`` never leaves the process."""

    env: str
    files: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()  # fingerprints
    unmaskable: tuple[str, ...] = ()  # names of values too short to redact
    values: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "recipients": list(self.recipients),
                "unmaskable": list(self.unmaskable)}


class Secrets:
    """The secrets of one project, environment by environment."""

    def __init__(self, settings: Settings, declared_envs: set[str],
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.declared = declared_envs
        self.clock = clock

    @property
    def config_path(self) -> Path:
        return self.settings.project_dir / CONFIG_NAME

    def _sops(self, key: AgeKey | None = None) -> Sops:
        """sops with this project's rules, ``key`` and the allowlisted environment."""
        return Sops(self.config_path, key, self.settings.child_environ())

    def config(self) -> SopsConfig:
        return SopsConfig.load(self.config_path)

    def inventory(self, env: str) -> Path:
        return inventory_path(self.settings.inventories_dir, env, self.declared)

    def files(self, env: str) -> list[Path]:
        """Every SOPS file ``env``'s inventory holds (what the vars plugin will load)."""
        root = self.inventory(env)
        # hidden files are skipped, as the vars plugin skips them (`secrets check` does not)
        return sorted(p for p in root.rglob("*") if p.is_file() and is_sops_name(p.name)
                      and not any(part.startswith(".") for part in p.relative_to(root).parts))

    def key(self, env: str) -> KeyRef:
        return KeyRef.of(self.settings, env)

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.settings.project_dir))

    # -- the run path -----------------------------------------------------------------

    def load_for_run(self, env: str) -> EnvSecrets:
        """Check and decrypt ``env``'s files in memory; raise before anything runs."""
        files = self.files(env)
        if not files:
            return EnvSecrets(env)
        ref = self.key(env)
        sops = self._sops(ref.for_sops())
        config = self.config()
        own = config.recipients(env)
        if not own:
            raise SecretsInvalidError(
                f"{env} has SOPS files but sops-rules.yaml has no creation rule for it",
                remedy=f"Run `autoops secrets init --env {env}`.")
        values: list[str] = []
        short: list[str] = []
        used: set[str] = set()
        for path in files:
            used.update(self.check_recipients(path, env, config))
            doc = json.loads(sops.decrypt(path))
            for name, value in leaves(doc):
                if isinstance(value, bool) or value is None:
                    continue
                text = str(value)
                values.append(text)
                if len(text) < MIN_MASKABLE:
                    short.append(f"{self.relative(path)}:{name}")
        return EnvSecrets(env, tuple(self.relative(p) for p in files),
                          tuple(sorted(agekeys.fingerprint(r) for r in used)),
                          tuple(short), tuple(values))

    def values_named(self, env: str, names: Collection[str]) -> dict[str, str]:
        """Top-level values called ``names`` in ``env``'s files (the first file holding each).

        For autoops itself (a notifier's token), decrypted in memory like a run's.
        """
        files = self.files(env)
        if not files:
            return {}
        sops = self._sops(self.key(env).for_sops())
        found: dict[str, str] = {}
        for path in files:
            doc = json.loads(sops.decrypt(path))
            for name in names:
                value = doc.get(name) if isinstance(doc, dict) else None
                if name not in found and isinstance(value, str | int) and \
                        not isinstance(value, bool):
                    found[name] = str(value)
        return found

    def lent_key(self, loaded: EnvSecrets) -> str | None:
        """The age key's text, for an execution node to borrow for one run (None: no files)."""
        return self.key(loaded.env).text() if loaded.files else None

    def run_key(self, loaded: EnvSecrets) -> tuple[dict[str, str], str | None]:
        """What ansible-playbook's vars plugin needs to open the files.

        Paths for its environment (the sops binary, the key file) and, for a key given
        inline (SOPS_AGE_KEY), the key itself: the runner hands that one over in memory,
        never in an environment.
        """
        if not loaded.files:
            return {}, None
        key = self.key(loaded.env).for_sops()
        env = {"ANSIBLE_SOPS_BINARY": sops_binary()}
        if key.inline is not None:
            return env, key.inline
        return {**env, **key.environ()}, None

    def check_recipients(self, path: Path, env: str, config: SopsConfig) -> list[str]:
        """The file's recipients, refused unless all of them are ``env``'s own."""
        meta = sops_metadata(parse_document(self._read(path)))
        if meta is None:
            raise SecretsInvalidError(f"{self.relative(path)} is not SOPS-encrypted",
                                      remedy="Encrypt it: `autoops secrets edit --env "
                                             f"{env}` writes only encrypted files.")
        recipients = age_recipients(meta)
        own = set(config.recipients(env))
        strangers = [r for r in recipients if r not in own]
        if strangers or not recipients:
            owners = sorted({o for r in strangers for o in config.owner_of(r)})
            whose = f" ({', '.join(owners)}'s key)" if owners else ""
            raise SecretsCrossEnvError(
                f"{self.relative(path)} is encrypted to a recipient that is not {env}'s{whose}: "
                f"{', '.join(agekeys.fingerprint(r) for r in strangers) or 'none'}")
        return recipients

    def _read(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsInvalidError(f"cannot read {self.relative(path)}: {exc}") from None

    # -- operator commands ------------------------------------------------------------

    def init(self, env: str) -> dict[str, Any]:
        """Key pair, creation rule and an (empty) encrypted file for ``env``; idempotent."""
        inventory = self.inventory(env)
        ref = self.key(env)
        config = self.config()
        created_key = False
        if ref.exists():
            recipient = ref.recipients()[0]
        else:
            assert ref.path is not None  # noqa: S101 - an inline key always exists
            secret, recipient = agekeys.generate()
            if config.owner_of(recipient):  # impossible for a fresh key; cheap to be sure
                raise SecretsCrossEnvError("a freshly generated key is already in use")
            agekeys.write_private(ref.path, secret, recipient, self.clock())
            created_key = True
        shared = [o for o in config.owner_of(recipient) if o != env]
        if shared:
            raise SecretsCrossEnvError(
                f"the key at {ref.origin} is already {', '.join(shared)}'s; environments "
                "share no key", remedy="Give each environment its own key file (unset "
                "SOPS_AGE_KEY_FILE / SOPS_AGE_KEY for the default per-environment files).")
        current = config.recipients(env)
        if current and recipient not in current:
            raise SecretsCrossEnvError(
                f"{env} is already encrypted to {agekeys.fingerprint(current[0])}, not to the "
                f"key at {ref.origin} ({agekeys.fingerprint(recipient)})",
                remedy=f"Use {env}'s key, or re-key with `autoops secrets rotate --env {env} "
                       "--new-recipient`.")
        if not current:
            config.with_env(env, [recipient]).save()
        target = inventory / SECRETS_FILE
        created_file = not target.exists()
        if created_file:
            target.parent.mkdir(parents=True, exist_ok=True)
            sops = self._sops()
            initial = initial_document(env).encode()
            write_atomic(target, sops.encrypt(initial, self.relative(target), [recipient]), 0o644)
        return {"env": env, "key": ref.origin, "key_created": created_key,
                "recipient": recipient, "fingerprint": agekeys.fingerprint(recipient),
                "file": self.relative(target), "file_created": created_file}

    def key_names(self, env: str) -> dict[str, list[str]]:
        """Variable names per file, read from the encrypted files (no key needed)."""
        return {self.relative(path): self.key_names_of(path) for path in self.files(env)}

    def edit(self, env: str, file: str | None = None, *, terminal: bool) -> dict[str, Any]:
        """Open a file of ``env`` in $EDITOR through sops; report which names changed.

        ``terminal``: the caller's stdin, stdout and stderr are a terminal. Without one
        this refuses before sops runs (sops' "press a key" prompt would loop forever).
        """
        if not terminal:
            raise SecretsNoTerminalError(
                "`autoops secrets edit` needs a terminal (stdin, stdout and stderr): "
                "the editor and sops' prompts run there")
        if not self.settings.editor:
            raise BadInputError("no editor: set $EDITOR (or $VISUAL)",
                                remedy="For example: EDITOR=vi autoops secrets edit --env ENV")
        target = self._pick(env, file)
        self.check_recipients(target, env, self.config())
        before = set(self.key_names_of(target))
        sops = self._sops(self.key(env).for_sops())
        changed = sops.edit(target, self.settings.editor, self.relative(target))
        after = set(self.key_names_of(target))
        return {"env": env, "file": self.relative(target), "changed": changed,
                "added": sorted(after - before), "removed": sorted(before - after)}

    def set_value(self, env: str, name: str, value: str,
                  file: str | None = None) -> dict[str, Any]:
        """Set one variable of a file of ``env`` to ``value`` (sops reads it from a pipe)."""
        checked_name(name)
        if not value:
            raise BadInputError("the value is empty", remedy="Pass the value on stdin, e.g. "
                                "`autoops secrets set --env ENV NAME < value-file`.")
        target = self._pick(env, file)
        self.check_recipients(target, env, self.config())
        existed = name in self.top_names_of(target)
        sops = self._sops(self.key(env).for_sops())
        sops.set_value(target, name, value, self.relative(target))
        warnings = []
        if len(value) < MIN_MASKABLE:
            warnings.append(f"{name}'s value is shorter than {MIN_MASKABLE} characters: runs "
                            "cannot mask it in their output")
        return {"env": env, "file": self.relative(target), "name": name, "created": not existed,
                "warnings": warnings}

    def unset_value(self, env: str, name: str, file: str | None = None) -> dict[str, Any]:
        """Remove one variable from a file of ``env``; refused when it is not there."""
        target = self._pick(env, file)
        self.check_recipients(target, env, self.config())
        if name not in self.top_names_of(target):
            raise SecretsNameUnknownError(
                f"{self.relative(target)} has no variable {name!r}; nothing was changed")
        sops = self._sops(self.key(env).for_sops())
        sops.unset(target, name, self.relative(target))
        return {"env": env, "file": self.relative(target), "name": name}

    def key_names_of(self, path: Path) -> list[str]:
        doc = parse_document(self._read(path))
        if sops_metadata(doc) is None:
            raise SecretsInvalidError(f"{self.relative(path)} is not SOPS-encrypted")
        return [name for name, _ in leaves(doc)]

    def top_names_of(self, path: Path) -> list[str]:
        """The file's top-level variable names (from the encrypted file: no key needed)."""
        doc = parse_document(self._read(path))
        if sops_metadata(doc) is None or not isinstance(doc, dict):
            raise SecretsInvalidError(f"{self.relative(path)} is not SOPS-encrypted")
        return [str(key) for key in doc if key != "sops"]

    def _pick(self, env: str, file: str | None) -> Path:
        files = self.files(env)
        if file is None:
            default = self.inventory(env) / SECRETS_FILE
            if default in files:
                return default
            if len(files) == 1:
                return files[0]
            if not files:
                raise SecretsKeyMissingError(f"{env} has no SOPS file yet",
                                             remedy=f"Run `autoops secrets init --env {env}`.")
            raise BadInputError(f"{env} has several SOPS files; name one with --file",
                                remedy=", ".join(self.relative(p) for p in files))
        for path in files:
            if self.relative(path) == file or str(path) == file:
                return path
        raise BadInputError(f"{file!r} is not one of {env}'s SOPS files",
                            remedy=", ".join(self.relative(p) for p in files) or
                            f"Run `autoops secrets init --env {env}`.")

    def rotate(self, env: str, new_recipient: str | None = None,
               new_key: bool = False) -> dict[str, Any]:
        """A new data key for every file; with a new recipient, re-key and retire the old.

        Crash-safe order: new key file written aside, every file re-encrypted in memory
        and proven to open with the new key, then files, rule and key files replaced.
        """
        files = self.files(env)
        if not files:
            raise SecretsKeyMissingError(f"{env} has no SOPS file to rotate",
                                         remedy=f"Run `autoops secrets init --env {env}`.")
        ref = self.key(env)
        config = self.config()
        old = config.recipients(env)
        for path in files:
            self.check_recipients(path, env, config)
        staged: Path | None = None
        probe: AgeKey | None = None
        target = old
        if new_key:
            staged, new_recipient = self._stage_new_key(ref)
            probe = AgeKey(file=staged, origin=str(staged))
        if new_recipient is not None:
            target = [self._checked_recipient(new_recipient, env, config)]
        sops = self._sops(ref.for_sops())
        rotated = {}
        try:
            for path in files:
                add = [r for r in target if r not in old]
                remove = [r for r in old if r not in target]
                rotated[path] = sops.rotate(path, add=add, remove=remove)
                if probe is not None:
                    sops.check_decrypts(rotated[path], self.relative(path), probe)
        except BaseException:
            if staged is not None:
                staged.unlink(missing_ok=True)
            raise
        for path, content in rotated.items():
            write_atomic(path, content, 0o644)
        retired = None
        if target != old:
            config.with_env(env, target).save()
        if staged is not None and ref.path is not None:
            retired = agekeys.retire(ref.path, self.clock()) if ref.path.exists() else None
            staged.replace(ref.path)
        return {"env": env, "files": [self.relative(p) for p in files],
                "old_recipients": [agekeys.fingerprint(r) for r in old],
                "new_recipients": [agekeys.fingerprint(r) for r in target],
                "rekeyed": target != old, "retired_key": str(retired) if retired else None,
                "key": ref.origin}

    def _stage_new_key(self, ref: KeyRef) -> tuple[Path, str]:
        """Write a new key beside the current one (``ENV.txt.new``); it is swapped in last."""
        if ref.path is None:
            raise BadInputError("the key is in $SOPS_AGE_KEY: autoops cannot replace it",
                                remedy="Generate a key elsewhere and pass its public "
                                       "recipient: --new-recipient age1…")
        secret, recipient = agekeys.generate()
        staged = ref.path.with_name(ref.path.name + ".new")
        staged.unlink(missing_ok=True)  # a leftover of an interrupted rotation
        agekeys.write_private(staged, secret, recipient, self.clock())
        return staged, recipient

    @staticmethod
    def _checked_recipient(recipient: str, env: str, config: SopsConfig) -> str:
        if not agekeys.RECIPIENT_PATTERN.fullmatch(recipient):
            raise BadInputError(f"{recipient!r} is not an age recipient (age1…)")
        others = [o for o in config.owner_of(recipient) if o != env]
        if others:
            raise SecretsCrossEnvError(f"that recipient is already {', '.join(others)}'s",
                                       remedy="Give every environment a key of its own.")
        return recipient
