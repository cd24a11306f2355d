"""Secrets on the run path: real sops, real age keys, real playbooks, and leak hunts.

A canary secret lives in a SOPS file of a (localised) environment. After each run
every file under the state directory, the system temp directory, /dev/shm and
~/.ansible, the console output, and every process's argv and environment sampled
during the run are searched for it: the only copy allowed is the file the play
delivered it to.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from autoops.engine import Autoops, RunRequest
from autoops.errors import (
    SecretsCrossEnvError,
    SecretsKeyMissingError,
    SecretsKeyWrongError,
    SecretsTamperedError,
)
from autoops.exits import ExitStatus
from autoops.secrets.redact import MASK
from autoops.secrets.sops import AgeKey, Sops
from autoops.settings import Settings
from tests.conftest import VENV_BIN, cli_env, localise, run_script
from tests.integration.conftest import ProcessWatch, git, records, set_vars, wait_for

pytestmark = pytest.mark.integration

SECRETS = Path("group_vars") / "all" / "secrets.sops.yml"


class Canary:
    """A unique secret whose core (hex) survives any quoting or escaping."""

    def __init__(self) -> None:
        self.core = secrets.token_hex(12)
        self.value = f'Cn-{self.core}-"q\\b'

    def found_in(self, text: str) -> bool:
        return self.core in text


def put_secrets(app: Autoops, env: str, data: dict[str, object]) -> Path:
    path = app.settings.inventories_dir / env / SECRETS
    rel = str(path.relative_to(app.settings.project_dir))
    sops = Sops(app.secrets.store.config_path)
    path.write_bytes(sops.encrypt(yaml.safe_dump(data).encode(), rel,
                                  app.secrets.store.config().recipients(env)))
    return path


@pytest.fixture
def keyed(settings: Settings, project: Path) -> Autoops:
    """staging and production, each with its own key, both pointed at this machine."""
    app = Autoops(settings)
    for env in ("staging", "production"):
        localise(project, env)
        app.secrets.init(env)
    return app


@pytest.fixture
def watch(request: pytest.FixtureRequest) -> Iterator[ProcessWatch]:
    canary: Canary = request.getfixturevalue("canary")
    watcher = ProcessWatch(canary.core)
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture
def canary(keyed: Autoops) -> Canary:
    value = Canary()
    put_secrets(keyed, "staging", {"canary_secret": value.value, "other": "unused-1234"})
    return value


def files_containing(root: Path, needle: bytes, skip: set[Path]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            if path in skip or not path.is_file() or path.is_symlink():
                continue
            try:
                if path.stat().st_size > 64 * 2**20:
                    continue
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def interrupt_when(proc: subprocess.Popen[str], ready: Callable[[], bool],
                   what: str) -> tuple[str, str]:
    """Ctrl-C ``proc`` once ``ready``; its output. It is killed whatever happens."""
    try:
        wait_for(ready, what=what)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=60)
    finally:
        proc.kill()


def leak_hunt(canary: Canary, settings: Settings, dest: Path, *texts: str) -> list[str]:
    """Every place the canary is found, except its intended destination."""
    roots = [settings.state_dir, Path(tempfile.gettempdir()), Path("/dev/shm"),
             Path.home() / ".ansible"]
    leaks = [str(p) for root in roots if root.exists()
             for p in files_containing(root, canary.core.encode(), {dest})]
    leaks += [f"console output #{i}" for i, text in enumerate(texts) if canary.found_in(text)]
    return leaks


def test_a_run_uses_the_secret_and_leaves_it_nowhere_else(
        keyed: Autoops, canary: Canary, watch: ProcessWatch, tmp_path: Path) -> None:
    dest = tmp_path / "delivered" / "secret.txt"
    dest.parent.mkdir()
    result = run_script(keyed.settings, "run", "test-secret", "--env", "staging",
                        "-p", f"dest={dest}")
    as_json = run_script(keyed.settings, "run", "test-secret", "--env", "staging",
                         "-p", f"dest={dest}", "--json")
    watch.stop()
    assert result.returncode == 0, result.stderr
    assert as_json.returncode == 0, as_json.stderr
    assert dest.read_text() == canary.value, "the play must get the decrypted value"
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    echoed = [r for r in json.loads(as_json.stdout)["results"] if r["task"] == "Echo the secret"]
    assert echoed[0]["msg"] == f"the secret is {MASK}", "the echoed secret is shown masked"
    assert watch.samples > 10
    assert watch.hits == [], "a process had the secret in its argv or environment"
    assert leak_hunt(canary, keyed.settings, dest, result.stdout, result.stderr,
                     as_json.stdout, as_json.stderr) == []
    assert list(keyed.settings.runs_dir.iterdir()) == [], "the private data dir is removed"
    started = [r for r in records(keyed.settings) if r["type"] == "run.started"]
    assert started[-1]["data"]["sops"]["files"] == [f"inventories/staging/{SECRETS}"]


def test_a_failing_task_with_the_secret_in_its_message_is_redacted(
        keyed: Autoops, canary: Canary, watch: ProcessWatch, tmp_path: Path) -> None:
    dest = tmp_path / "secret.txt"
    result = run_script(keyed.settings, "run", "test-secret", "--env", "staging",
                        "-p", f"dest={dest}", "-p", "fail=true")
    as_json = run_script(keyed.settings, "run", "test-secret", "--env", "staging",
                         "-p", f"dest={dest}", "-p", "fail=true", "--json")
    watch.stop()
    assert result.returncode == ExitStatus.PLAYBOOK_FAILED, result.stderr
    doc = json.loads(as_json.stdout)
    failed = [r for r in doc["results"] if r["status"] == "failed"]
    assert failed
    assert failed[0]["msg"].count(MASK) == 2, failed[0]["msg"]  # JSON-escaped and shell-quoted
    assert watch.hits == []
    assert leak_hunt(canary, keyed.settings, dest, result.stdout, result.stderr,
                     as_json.stdout, as_json.stderr) == []


def test_a_run_cancelled_mid_way_leaves_the_secret_nowhere(
        keyed: Autoops, canary: Canary, watch: ProcessWatch, tmp_path: Path) -> None:
    dest = tmp_path / "secret.txt"
    proc = subprocess.Popen(
        [str(VENV_BIN / "autoops"), "run", "test-secret", "--env", "staging",
         "-p", f"dest={dest}", "-p", "seconds=97"],
        env=cli_env(keyed.settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def sleeping_with_the_secret() -> bool:
        return any(r["type"] == "task.result" and r["data"]["task"] == "Register the secret"
                   for r in records(keyed.settings)) and subprocess.run(
            ["pgrep", "-f", "^sleep 97$"], check=False, capture_output=True).returncode == 0
    out, err = interrupt_when(proc, sleeping_with_the_secret, "the secret in use and the sleep")
    watch.stop()
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert subprocess.run(["pgrep", "-f", "^sleep 97$"], check=False).returncode == 1
    assert watch.hits == []
    assert leak_hunt(canary, keyed.settings, dest, out, err) == []
    assert list(keyed.settings.runs_dir.iterdir()) == []


# What a caller could set to make Ansible write (or keep) what it handles.
LOUD = {"ANSIBLE_VERBOSITY": "4", "ANSIBLE_DEBUG": "1", "ANSIBLE_KEEP_REMOTE_FILES": "1",
        "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "1", "ANSIBLE_NO_TARGET_SYSLOG": "0",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json,ansible.builtin.tree",
        "ANSIBLE_PIPELINING": "0"}


def test_the_callers_logging_settings_receive_no_secret(
        keyed: Autoops, canary: Canary, watch: ProcessWatch, tmp_path: Path) -> None:
    """ANSIBLE_LOG_PATH, -vvvv-equivalents and kept remote files, set by the caller."""
    dest = tmp_path / "secret.txt"
    log = tmp_path / "ansible.log"
    tree = tmp_path / "tree"
    env = {**cli_env(keyed.settings), **LOUD, "ANSIBLE_LOG_PATH": str(log),
           "ANSIBLE_CALLBACK_TREE_DIR": str(tree)}
    ran = subprocess.run([str(VENV_BIN / "autoops"), "run", "test-secret", "--env", "staging",
                          "-p", f"dest={dest}", "-p", "fail=true"], env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    watch.stop()
    assert ran.returncode == ExitStatus.PLAYBOOK_FAILED, ran.stderr
    assert "ANSIBLE_LOG_PATH" in ran.stderr, "the dropped variables are named"
    assert not log.exists()
    assert not tree.exists()
    assert watch.hits == []
    assert leak_hunt(canary, keyed.settings, dest, ran.stdout, ran.stderr) == []


def test_a_task_killed_with_the_secret_in_its_arguments_leaves_no_payload(
        keyed: Autoops, canary: Canary, watch: ProcessWatch, tmp_path: Path) -> None:
    dest = tmp_path / "secret.txt"
    payloads: list[Path] = []
    proc = subprocess.Popen(
        [str(VENV_BIN / "autoops"), "run", "test-secret", "--env", "staging",
         "-p", f"dest={dest}", "-p", "hold=true", "-p", "seconds=95"],
        env={**cli_env(keyed.settings), **LOUD}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    def waiting() -> bool:
        payloads[:] = list(keyed.settings.runs_dir.glob("*/tmp/ansible_*wait_for_payload_*"))
        return bool(payloads)
    out, err = interrupt_when(proc, waiting, "the module to run with its payload unpacked")
    watch.stop()
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert payloads, "the payload is unpacked inside the run's private directory"
    assert not any(p.exists() for p in payloads)
    assert leak_hunt(canary, keyed.settings, dest, out, err) == []
    assert list(keyed.settings.runs_dir.iterdir()) == []


def test_an_inline_age_key_never_reaches_ansible(keyed: Autoops, canary: Canary,
                                                 tmp_path: Path) -> None:
    """SOPS_AGE_KEY (the key itself) reaches sops through a memfd, never an environment."""
    key_text = (keyed.settings.age_keys_dir / "staging.txt").read_text()
    secret_line = next(ln for ln in key_text.splitlines() if ln.startswith("AGE-SECRET-KEY-"))
    inline = replace(keyed.settings, age_key=secret_line)
    env = {k: v for k, v in cli_env(inline).items() if k != "SOPS_AGE_KEY_FILE"}
    env["SOPS_AGE_KEY"] = secret_line
    key_watch = ProcessWatch(secret_line)
    key_watch.start()
    dest = tmp_path / "secret.txt"
    proc = subprocess.Popen([str(VENV_BIN / "autoops"), "run", "test-secret", "--env",
                             "staging", "-p", f"dest={dest}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    key_watch.stop()
    assert proc.returncode == ExitStatus.OK, err
    assert dest.read_text() == canary.value
    others = [hit for hit in key_watch.hits if hit != f"{proc.pid}/environ"]
    assert others == [], "the age key was in another process's argv or environment"
    assert secret_line not in out + err


def test_a_secret_value_is_data_never_a_template(keyed: Autoops, tmp_path: Path) -> None:
    """community.sops marks decrypted values as templates; autoops' vars plugin does not."""
    marker = tmp_path / "templated"
    value = f"{{{{ lookup('pipe', 'touch {marker}') }}}} {{% raw %}} tail"
    put_secrets(keyed, "staging", {"canary_secret": value})
    dest = tmp_path / "secret.txt"
    result = run_script(keyed.settings, "run", "test-secret", "--env", "staging",
                        "-p", f"dest={dest}")
    assert result.returncode == ExitStatus.OK, result.stdout + result.stderr
    assert not marker.exists(), "a secret's value was run as a template"
    assert dest.read_text() == value, "the value reaches the task exactly as stored"
    assert "DEPRECATION" not in result.stdout + result.stderr


def test_plain_ansible_playbook_reads_the_same_secrets(keyed: Autoops, canary: Canary,
                                                       tmp_path: Path) -> None:
    """AWX, Semaphore and a plain ansible-playbook use the repository's ansible.cfg."""
    dest = tmp_path / "plain.txt"
    project = keyed.settings.project_dir
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(keyed.settings.age_keys_dir / "staging.txt"),
           "ANSIBLE_CONFIG": str(project / "ansible.cfg"),  # sops on PATH, as in an EE
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
    env.pop("SOPS_AGE_KEY", None)
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/staging",
         "playbooks/test-secret.yml", "-e", f"dest={dest}"],
        cwd=project, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dest.read_text() == canary.value
    listing = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", "inventories/staging",
                              "--list"], cwd=project, env=env, capture_output=True, text=True,
                             check=True)
    assert not canary.found_in(listing.stdout), "inventory listings show ciphertext only"


def test_each_environment_key_opens_only_its_own_file(keyed: Autoops) -> None:
    files = {env: put_secrets(keyed, env, {"canary_secret": f"value-of-{env}"})
             for env in ("staging", "production")}
    keys = {env: AgeKey(file=keyed.settings.age_keys_dir / f"{env}.txt", origin=env)
            for env in files}
    for env, path in files.items():
        assert json.loads(Sops(keyed.secrets.store.config_path, keys[env]).decrypt(path)) == {
            "canary_secret": f"value-of-{env}"}
        other = "production" if env == "staging" else "staging"
        with pytest.raises(SecretsKeyWrongError):
            Sops(keyed.secrets.store.config_path, keys[other]).decrypt(path)


def refused_before_running(app: Autoops, dest: Path, code: str) -> None:
    """The run stopped with ``code``: nothing executed, and the audit log says why."""
    assert not dest.exists()
    recs = records(app.settings)
    assert not [r for r in recs if r["type"] in {"run.started", "task.result"}]
    finished = [r for r in recs if r["type"] == "run.finished"]
    assert finished[-1]["data"]["status"] == "refused"
    assert finished[-1]["data"]["error"]["code"] == code


def test_another_environments_key_stops_the_run(keyed: Autoops, canary: Canary,
                                                tmp_path: Path) -> None:
    dest = tmp_path / "secret.txt"
    wrong = replace(keyed.settings, age_key_file=keyed.settings.age_keys_dir / "production.txt")
    result = run_script(wrong, "run", "test-secret", "--env", "staging", "-p", f"dest={dest}")
    assert result.returncode == ExitStatus.BAD_INPUT
    assert "AUTOOPS-SECRETS-KEY-WRONG" in result.stderr
    assert "remedy:" in result.stderr
    refused_before_running(keyed, dest, "AUTOOPS-SECRETS-KEY-WRONG")
    assert not canary.found_in(result.stdout + result.stderr)


def test_a_missing_key_stops_the_run(keyed: Autoops, canary: Canary, tmp_path: Path) -> None:
    dest = tmp_path / "secret.txt"
    (keyed.settings.age_keys_dir / "staging.txt").unlink()
    with pytest.raises(SecretsKeyMissingError):
        Autoops(keyed.settings).run(RunRequest("test-secret", "staging", {"dest": str(dest)}))
    refused_before_running(keyed, dest, "AUTOOPS-SECRETS-KEY-MISSING")


@pytest.mark.parametrize("tamper", ["flip", "drop-key", "swap"])
def test_a_tampered_file_stops_the_run(keyed: Autoops, tamper: str, tmp_path: Path) -> None:
    path = put_secrets(keyed, "staging", {"canary_secret": "first-value-1",  # pragma: allowlist secret
                                          "second": "second-value-2"})
    doc = yaml.safe_load(path.read_text())
    if tamper == "flip":
        data = re.search(r"data:([^,]+)", doc["canary_secret"])
        assert data is not None
        old = data.group(1)
        new = ("A" if old[0] != "A" else "B") + old[1:]
        doc["canary_secret"] = doc["canary_secret"].replace(old, new)
    elif tamper == "drop-key":
        del doc["second"]
    else:
        doc["canary_secret"], doc["second"] = doc["second"], doc["canary_secret"]
    path.write_text(yaml.safe_dump(doc))
    dest = tmp_path / "secret.txt"
    with pytest.raises(SecretsTamperedError):
        Autoops(keyed.settings).run(RunRequest("test-secret", "staging", {"dest": str(dest)}))
    refused_before_running(keyed, dest, "AUTOOPS-SECRETS-TAMPERED")


def test_a_file_encrypted_for_another_environment_is_refused(keyed: Autoops,
                                                             tmp_path: Path) -> None:
    prod = put_secrets(keyed, "production", {"canary_secret": "production-only-1"})
    stray = keyed.settings.inventories_dir / "staging" / "group_vars" / "all" / "x.sops.yml"
    stray.write_bytes(prod.read_bytes())
    dest = tmp_path / "secret.txt"
    with pytest.raises(SecretsCrossEnvError, match="production's key"):
        Autoops(keyed.settings).run(RunRequest("test-secret", "staging", {"dest": str(dest)}))
    refused_before_running(keyed, dest, "AUTOOPS-SECRETS-CROSS-ENV")


def test_environments_without_secrets_need_no_key(app: Autoops, tmp_path: Path) -> None:
    dest = tmp_path / "echo.txt"
    result = app.run(RunRequest("test-echo", "local", {"text": "hello", "dest": str(dest)}))
    assert result.status is ExitStatus.OK
    assert not app.settings.age_keys_dir.exists()


def test_deploy_writes_the_apps_environment_file_from_secrets(
        settings: Settings, project: Path, supervisor: Path, tmp_path: Path) -> None:
    """The deploy role's env_file: SOPS values delivered 0600, a change restarts the app."""
    app = Autoops(settings)
    app.secrets.init("local")
    canary = Canary()
    put_secrets(app, "local", {"canary_secret": canary.value})
    source = tmp_path / "src"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    (source / "VERSION").write_text("v1")
    git("add", "VERSION", cwd=source)
    git("commit", "-q", "-m", "v1", cwd=source)
    env_file = tmp_path / "demo.env"
    config = {"repo": str(source), "dest": str(tmp_path / "demo"), "service": "autoops-demo",
              "env_file": str(env_file),
              "env": {"DB_PASSWORD": "{{ canary_secret }}", "MODE": "prod"}}
    set_vars(project, "local", autoops_deploy_state_dir=str(tmp_path / "state-deploy"),
             autoops_apps={"demo": config})
    first = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "main"}))
    assert first.status is ExitStatus.OK, first.results
    assert env_file.read_text() == f"DB_PASSWORD={shlex.quote(canary.value)}\nMODE=prod\n"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert not canary.found_in(json.dumps(first.to_dict()))
    assert not canary.found_in(settings.audit_path.read_text())

    put_secrets(app, "local", {"canary_secret": "rotated-password-42"})  # pragma: allowlist secret
    again = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "main"}))
    assert again.status is ExitStatus.OK, again.results
    assert "rotated-password-42" in env_file.read_text()
    restarted = [r for r in again.results if r["task"].startswith("Restart") and r["changed"]]
    assert restarted, "a changed environment file restarts the service"

    (project / "ansible.cfg").write_text((project / "ansible.cfg").read_text().replace(
        ", autoops.ops.sops_data", ""))
    plain = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "main"}))
    assert plain.status is ExitStatus.PLAYBOOK_FAILED
    assert any("SOPS ciphertext" in (r["msg"] or "") for r in plain.results)
    assert "rotated-password-42" in env_file.read_text(), "ciphertext is never written"
