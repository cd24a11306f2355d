"""Secrets from scripts: `secrets set`/`unset`, `secrets edit` without a terminal, failing editors.

Real sops, real age keys, the real console script: a value travels over a pipe only
(never argv or an environment), is never in the audit log or the state directory, and
nothing here can leave sops reopening an editor forever.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from ansible.vars.reserved import get_reserved_names

from autoops.engine import Autoops, RunRequest
from autoops.exits import ExitStatus
from autoops.secrets.sops import AgeKey, Sops
from autoops.secrets.store import RESERVED_NAMES, RESERVED_PREFIXES
from autoops.settings import Settings
from tests.conftest import VENV_BIN, cli_env, run_cli, run_script
from tests.integration.conftest import ProcessWatch, Terminal, records, wait_for

pytestmark = pytest.mark.integration

SECRETS = "group_vars/all/secrets.sops.yml"  # pragma: allowlist secret


def secrets_file(settings: Settings, env: str = "staging") -> Path:
    return settings.inventories_dir / env / SECRETS


def sops_for(settings: Settings, env: str = "staging") -> Sops:
    key = settings.config_dir / "age" / f"{env}.txt"
    return Sops(settings.project_dir / "sops-rules.yaml", AgeKey(file=key, origin="test"))


def decrypted(settings: Settings, env: str = "staging") -> dict[str, object]:
    data: dict[str, object] = json.loads(sops_for(settings, env).decrypt(secrets_file(settings, env)))
    return data


def decrypted_text(settings: Settings, env: str = "staging") -> str:
    """The document as the editor sees it (YAML, comments included)."""
    return sops_for(settings, env)._run(["decrypt", str(secrets_file(settings, env))]).decode()


def autoops(settings: Settings, *argv: str, value: bytes | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed console script, the value's bytes (if any) on its stdin."""
    proc = subprocess.run([str(VENV_BIN / "autoops"), *argv], env=cli_env(settings),
                          input=value, stdin=subprocess.DEVNULL if value is None else None,
                          capture_output=True, timeout=timeout, check=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o700)
    return str(path)


def invalid_yaml_editor(tmp_path: Path) -> tuple[str, Path]:
    """An editor that leaves content sops cannot parse, counting how often it is opened."""
    count = tmp_path / "opened"
    return script(tmp_path, "bad-editor.sh",
                  f'echo x >> "{count}"\necho "broken: [unclosed" >> "$1"\n'), count


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and needle in p.read_bytes()]


def full_terminal(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pty that is its controlling terminal."""
    return Terminal(argv, env, stdout_too=True).finish(timeout)


@pytest.fixture
def staging(settings: Settings) -> Settings:
    assert run_cli(settings, "secrets", "init", "--env", "staging").status is ExitStatus.OK
    return settings


# -- secrets edit needs a terminal ------------------------------------------------------


def test_edit_without_a_terminal_is_refused_at_once(staging: Settings, tmp_path: Path) -> None:
    bad, opened = invalid_yaml_editor(tmp_path)
    before = secrets_file(staging).read_bytes()
    started = time.monotonic()
    result = run_script(replace(staging, editor=bad), "secrets", "edit", "--env", "staging",
                        timeout=30)
    assert time.monotonic() - started < 20
    assert result.returncode == ExitStatus.BAD_INPUT, result.stderr
    assert "AUTOOPS-SECRETS-NO-TERMINAL" in result.stderr
    assert "autoops secrets set --env ENV NAME" in result.stderr
    assert not opened.exists(), "sops never ran"
    assert secrets_file(staging).read_bytes() == before
    as_json = run_script(replace(staging, editor=bad), "secrets", "edit", "--env", "staging",
                         "--json", timeout=30)
    assert json.loads(as_json.stdout)["error"]["code"] == "AUTOOPS-SECRETS-NO-TERMINAL"
    assert json.loads(as_json.stdout)["error"]["exit_status"] == 2
    assert not [r for r in records(staging) if r["type"] == "secrets.edited"]


def test_a_library_caller_claiming_a_terminal_still_cannot_loop(staging: Settings,
                                                               tmp_path: Path) -> None:
    """Even if a caller wrongly says there is a terminal, sops reopens the editor once at most."""
    bad, opened = invalid_yaml_editor(tmp_path)
    before = secrets_file(staging).read_bytes()
    code = ("import sys\nfrom autoops.engine import Autoops\nfrom autoops.settings import Settings\n"
            "from autoops.errors import AutoopsError\n"
            "try:\n    Autoops(Settings.from_environ()).secrets.edit('staging', terminal=True)\n"
            "except AutoopsError as exc:\n    print(exc.code, exc.message)\n    sys.exit(2)\n")
    env = {**cli_env(replace(staging, editor=bad)), "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", code], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-2000:]
    assert "AUTOOPS-SECRETS-EDITOR-FAILED" in proc.stdout
    assert "does not parse and there is no terminal" in proc.stdout
    assert opened.read_text().count("x") == 1, "the editor was not reopened"
    assert secrets_file(staging).read_bytes() == before


def test_edit_on_a_real_terminal_appends_to_a_fresh_file(staging: Settings) -> None:
    """All three streams on a pty: the check passes and a plain appending editor works."""
    text = decrypted_text(staging)
    assert "# db_password: change-me" in text  # pragma: allowlist secret
    assert "{}" not in text.replace("`{}`", ""), "nothing a new line would break"
    appending = replace(staging, editor="sh -c 'echo \"name: value\" >> \"$1\"' --")
    rc, seen = full_terminal([str(VENV_BIN / "autoops"), "secrets", "edit", "--env", "staging"],
                             cli_env(appending))
    assert rc == ExitStatus.OK, seen
    assert "added name" in seen
    assert decrypted(staging) == {"autoops_placeholder": True, "name": "value"}
    assert "# db_password: change-me" in decrypted_text(staging)  # pragma: allowlist secret


@pytest.mark.parametrize(("editor_body", "message"), [
    ("exit 1\n", "the editor exited with status 1; nothing was changed"),
    ('echo "db_password: never-saved" >> "$1"\nexit 3\n',
     "the editor exited with status 3; nothing was changed"),
    (None, "could not start (No such file or directory); nothing was changed"),
])
def test_a_failing_editor_is_reported_as_such_and_changes_nothing(
        staging: Settings, tmp_path: Path, editor_body: str | None, message: str) -> None:
    chosen = (script(tmp_path, "failing.sh", editor_body) if editor_body is not None
              else str(tmp_path / "no-such-editor"))
    before = secrets_file(staging).read_bytes()
    rc, seen = full_terminal([str(VENV_BIN / "autoops"), "secrets", "edit", "--env", "staging"],
                             cli_env(replace(staging, editor=chosen)))
    assert rc == ExitStatus.BAD_INPUT, seen
    assert "AUTOOPS-SECRETS-EDITOR-FAILED" in seen
    assert message in seen
    assert "restore" not in seen.lower()
    assert "cannot read" not in seen
    assert secrets_file(staging).read_bytes() == before
    assert not [r for r in records(staging) if r["type"] == "secrets.edited"]


def test_a_new_file_is_commented_valid_and_re_init_leaves_it_alone(staging: Settings) -> None:
    path = secrets_file(staging)
    assert decrypted(staging) == {"autoops_placeholder": True}
    assert "# staging's secrets" in decrypted_text(staging)
    assert run_cli(staging, "secrets", "check").status is ExitStatus.OK
    (path.parent / "other.sops.yml").write_bytes(path.read_bytes())  # an existing file
    before = path.read_bytes()
    assert run_cli(staging, "secrets", "init", "--env", "staging").status is ExitStatus.OK
    assert path.read_bytes() == before


# -- secrets set / unset ------------------------------------------------------------------


def hostile_values() -> tuple[dict[str, str], list[bytes]]:
    """Values that break careless quoting, each holding a unique core that survives escaping."""
    cores = [secrets.token_hex(10) for _ in range(6)]
    values = {
        "quoted": f'he said "{cores[0]}" \\ \'single\' \\\\n',
        "templated": f"{{{{ lookup('pipe','id') }}}}-{cores[1]}-{{% raw %}}",
        "multi_line": f"line one {cores[2]}\nline two\n",
        "unicode": f"pässwörd ✓ 日本語 {cores[3]} \u2028 end",
        "crlf_tab": f"\t{cores[4]}\r\nwindows\r",
        "json_like": f'{{"a": [1, "{cores[5]}"]}}',
    }
    return values, [c.encode() for c in cores]


def test_set_and_unset_round_trip_hostile_values_over_a_pipe(staging: Settings) -> None:
    values, needles = hostile_values()
    watch = ProcessWatch(*needles, count_argv=b"\0set\0--value-stdin\0", interval=0.001)
    watch.start()
    try:
        for name, value in values.items():
            piped = value.encode() + b"\n"  # what `echo`/`printf '%s\n'` gives: one newline dropped
            result = autoops(staging, "secrets", "set", "--env", "staging", name, value=piped)
            assert result.returncode == ExitStatus.OK, result.stderr
            assert f"{name} added" in result.stdout
        for _ in range(40):  # make sure the watch can see sops at all
            if watch.cmdlines_seen:
                break
            again = autoops(staging, "secrets", "set", "--env", "staging", "quoted",
                            value=values["quoted"].encode())
            assert "quoted replaced" in again.stdout
    finally:
        watch.stop()
    assert watch.cmdlines_seen, "the watch never saw `sops set` running"
    assert not watch.hits, f"a value was on a process's argv or environment: {watch.hits}"

    data = decrypted(staging)
    assert {k: data[k] for k in values} == values, "every value round-trips exactly"
    assert "# db_password: change-me" in decrypted_text(staging), "comments stay"  # pragma: allowlist secret
    ciphertext = secrets_file(staging).read_bytes()
    root = staging.project_dir.parent
    for needle in needles:
        assert needle not in ciphertext
        assert not files_holding(root, needle), "no file holds a value in clear"
        assert not files_holding(staging.state_dir, needle)
    assert not list(secrets_file(staging).parent.glob(".autoops-*")), "no copy is left behind"
    set_records = [r for r in records(staging) if r["type"] == "secrets.set"]
    assert [r["data"]["name"] for r in set_records][:len(values)] == list(values)
    assert set(set_records[0]["data"]) == {"file", "name", "created", "os_user", "controller"}
    assert set_records[0]["data"]["created"] is True
    log = staging.audit_path.read_text()
    assert not any(n.decode() in log for n in needles)

    removed = autoops(staging, "secrets", "unset", "--env", "staging", "templated", "--json")
    assert removed.returncode == ExitStatus.OK, removed.stderr
    assert json.loads(removed.stdout) == {"env": "staging", "file": f"inventories/staging/{SECRETS}",
                                          "name": "templated"}
    after = decrypted(staging)
    assert "templated" not in after
    assert {k: after[k] for k in values if k != "templated"} == {
        k: v for k, v in values.items() if k != "templated"}
    unset = [r for r in records(staging) if r["type"] == "secrets.unset"]
    assert [r["data"]["name"] for r in unset] == ["templated"]

    before = secrets_file(staging).read_bytes()
    missing = autoops(staging, "secrets", "unset", "--env", "staging", "templated")
    assert missing.returncode == ExitStatus.BAD_INPUT
    assert "AUTOOPS-SECRETS-NAME-UNKNOWN" in missing.stderr
    assert "nothing was changed" in missing.stderr
    assert secrets_file(staging).read_bytes() == before


def test_set_prints_one_json_document_and_warns_about_short_values(staging: Settings) -> None:
    result = autoops(staging, "secrets", "set", "--env", "staging", "pin", "--json", value=b"42\n")
    assert result.returncode == ExitStatus.OK, result.stderr
    doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing data
    assert doc["name"] == "pin"
    assert doc["created"] is True
    assert doc["warnings"]
    assert "shorter than 4" in doc["warnings"][0]
    assert decrypted(staging)["pin"] == "42", "set stores a string, never a number"
    text = autoops(staging, "secrets", "set", "--env", "staging", "pin", value=b"4242")
    assert "pin replaced" in text.stdout
    assert "warning" not in text.stderr


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("db_password", b"", "the value is empty"),
    ("db_password", b"\n", "the value is empty"),
    ("DB_PASSWORD", b"v1234", "is not a variable name"),
    ("9lives", b"v1234", "is not a variable name"),
    ("a" * 65, b"v1234", "is not a variable name"),
    ("ansible_password", b"v1234", "would shadow"),
    ("autoops_backup_dir", b"v1234", "would shadow"),
    ("hostvars", b"v1234", "would shadow"),
    ("db_password", b"\xff\xfe", "not UTF-8"),
])
def test_set_refuses_bad_names_and_values(staging: Settings, name: str, value: bytes,
                                          expected: str) -> None:
    before = secrets_file(staging).read_bytes()
    result = subprocess.run([str(VENV_BIN / "autoops"), "secrets", "set", "--env", "staging", name],
                            env=cli_env(staging), input=value, capture_output=True, timeout=60,
                            check=False)
    assert result.returncode == ExitStatus.BAD_INPUT, result.stderr
    assert expected in result.stderr.decode()
    assert secrets_file(staging).read_bytes() == before
    assert not [r for r in records(staging) if r["type"] == "secrets.set"]


def test_set_and_unset_check_recipients_and_pick_files(staging: Settings) -> None:
    assert run_cli(staging, "secrets", "init", "--env", "production").status is ExitStatus.OK
    stray = secrets_file(staging).parent / "p.sops.yml"
    stray.write_bytes(secrets_file(staging, "production").read_bytes())
    before = stray.read_bytes()
    for argv in (["set", "--file", f"inventories/staging/group_vars/all/{stray.name}", "x_name"],
                 ["unset", "--file", f"inventories/staging/group_vars/all/{stray.name}",
                  "autoops_placeholder"]):
        result = autoops(staging, "secrets", argv[0], "--env", "staging", *argv[1:],
                         value=b"value-1" if argv[0] == "set" else None)
        assert result.returncode == ExitStatus.BAD_INPUT, result.stderr
        assert "AUTOOPS-SECRETS-CROSS-ENV" in result.stderr
    assert stray.read_bytes() == before
    stray.unlink()
    other = secrets_file(staging).parent / "app.sops.yml"
    other.write_bytes(secrets_file(staging).read_bytes())
    several = autoops(staging, "secrets", "set", "--env", "staging", "x_name", value=b"value-1")
    assert several.returncode == ExitStatus.OK, "the default secrets.sops.yml is picked"
    chosen = autoops(staging, "secrets", "set", "--env", "staging", "--file",
                     f"inventories/staging/group_vars/all/{other.name}", "y_name", value=b"value-2")
    assert chosen.returncode == ExitStatus.OK, chosen.stderr
    assert "y_name" in json.loads(sops_for(staging).decrypt(other))
    assert "y_name" not in decrypted(staging)


def test_set_from_a_terminal_prompts_without_echo(staging: Settings) -> None:
    value = f"typed-{secrets.token_hex(8)}"
    terminal = Terminal([str(VENV_BIN / "autoops"), "secrets", "set", "--env", "staging",
                         "typed_secret"], cli_env(staging))
    wait_for(lambda: b"input hidden" in terminal.seen, 60, "the prompt")
    terminal.type(value + "\n")
    rc, seen = terminal.finish(timeout=60)
    assert rc == ExitStatus.OK, seen
    assert value not in seen, "the typed value is not echoed"
    assert decrypted(staging)["typed_secret"] == value


def test_a_value_set_from_stdin_reaches_the_play_byte_for_byte(settings: Settings,
                                                               tmp_path: Path) -> None:
    """Through the vars plugin, a value with quotes, backslashes, unicode and lines is exact.

    (Not a trailing newline: the play writes it with ``content: "{{ canary_secret }}"``,
    and rendering a string template drops one trailing newline.)
    """
    app = Autoops(settings)
    app.secrets.init("local")
    value = f"\"q\" 'single' \\ \\n ü ✓\nsecond line {secrets.token_hex(6)}"
    result = autoops(settings, "secrets", "set", "--env", "local", "canary_secret",
                     value=value.encode() + b"\n")
    assert result.returncode == ExitStatus.OK, result.stderr
    dest = tmp_path / "delivered.txt"
    run = app.run(RunRequest("test-secret", "local", {"dest": str(dest)}))
    assert run.status is ExitStatus.OK, run.results
    assert dest.read_text() == value


def test_a_value_that_looks_like_a_template_reaches_the_play_as_text(
        settings: Settings, tmp_path: Path) -> None:
    """Secrets are data: `{{ lookup('pipe', …) }}` in a value is never evaluated."""
    app = Autoops(settings)
    app.secrets.init("local")
    marker = tmp_path / "ran"
    value = f"{{{{ lookup('pipe', 'touch {marker}') }}}} {{% raw %}} {{# c #}}"
    result = autoops(settings, "secrets", "set", "--env", "local", "canary_secret",
                     value=value.encode())
    assert result.returncode == ExitStatus.OK, result.stderr
    dest = tmp_path / "delivered.txt"
    ran = autoops(settings, "run", "test-secret", "--env", "local", "-p", f"dest={dest}")
    assert ran.returncode == ExitStatus.OK, ran.stdout + ran.stderr
    assert not marker.exists()
    assert dest.read_text() == value


def test_the_reserved_names_cover_what_ansible_reserves() -> None:
    reserved = {n for n in get_reserved_names() if not n.startswith(RESERVED_PREFIXES)}
    assert reserved <= RESERVED_NAMES
