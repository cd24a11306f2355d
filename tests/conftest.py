"""Shared fixtures: a disposable copy of the project and a private state directory.

Tests never touch the real state directory or the repository's own content: each
gets a copy of the project (catalog, policy, playbooks, roles, inventories) that it
may extend with test-only actions or hostile files.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from autoops.cli.main import program
from autoops.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CONTENT = ("ansible.cfg", "catalog.yml", "policy.yml", "playbooks", "roles", "collections",
           "filter_plugins", "inventories", "runbooks", "sops-rules.yaml",
           ".pre-commit-config.yaml")
VENV_BIN = Path(sys.executable).parent
# Built lab root filesystems are shared by every test (and with the operator's cache).
CACHE_DIR = Settings.from_environ().cache_dir

SLEEP_PARAMS = {"properties": {"seconds": {
    "type": "integer", "description": "how long", "minimum": 1, "maximum": 600, "default": 60}}}

# Test-only actions: deliberately permissive parameters, to prove that even text that
# passes a schema can never be executed as a template or a shell command.
TEST_ACTIONS = {
    "test-echo": {
        "description": "Write a parameter to a file and echo it through a shell (tests only).",
        "playbook": "playbooks/test-echo.yml", "risk": "SAFE",
        "environments": ["local"], "check_mode": False,
        "params": {"required": ["text", "dest"], "properties": {
            "text": {"type": "string", "description": "anything", "pattern": "^[\\s\\S]{0,500}$"},
            "dest": {"type": "string", "description": "file", "pattern": "^/[A-Za-z0-9._/-]+$"},
        }},
    },
    "test-sleep": {
        "description": "Sleep (tests only).", "playbook": "playbooks/test-sleep.yml",
        "risk": "SAFE", "environments": ["local", "lab"], "check_mode": False,
        "params": SLEEP_PARAMS,
    },
    "test-hold": {
        "description": "Sleep, as a run that can change something (tests only).",
        "playbook": "playbooks/test-sleep.yml", "risk": "LOW",
        "environments": ["local"], "check_mode": False,
        "params": SLEEP_PARAMS,
    },
    "test-secret": {
        "description": "Use the SOPS canary - deliver, echo and register it (tests only).",
        "playbook": "playbooks/test-secret.yml", "risk": "SAFE",
        "environments": ["local", "lab", "staging", "production"], "check_mode": False,
        "params": {"required": ["dest"], "properties": {
            "dest": {"type": "string", "description": "file", "pattern": "^/[A-Za-z0-9._/-]+$"},
            "fail": {"type": "boolean", "description": "fail with the secret", "default": False},
            "hold": {"type": "boolean", "description": "wait with the secret in a module's "
                     "arguments", "default": False},
            "seconds": {"type": "integer", "description": "then sleep", "minimum": 0,
                        "maximum": 600, "default": 0},
        }},
    },
}

TEST_PLAYBOOKS = {
    "test-echo.yml": """\
        ---
        - name: Echo a parameter
          hosts: all
          gather_facts: false
          tasks:
            - name: Write the parameter to a file
              ansible.builtin.copy:
                content: "{{ text }}"
                dest: "{{ dest }}"
                mode: "0600"
            - name: Pass the parameter to a shell, quoted
              ansible.builtin.shell: printf '%s' {{ text | quote }} > {{ (dest ~ '.shell') | quote }}
              changed_when: true
            - name: Pass the parameter through command argv
              ansible.builtin.command:
                argv: [sh, -c, 'printf "%s" "$0" > "$1"', "{{ text }}", "{{ dest }}.argv"]
              changed_when: true
        """,
    "test-sleep.yml": """\
        ---
        - name: Sleep
          hosts: all
          gather_facts: false
          tasks:
            - name: Sleep for a while
              ansible.builtin.command:
                argv: [sleep, "{{ seconds }}"]
              changed_when: false
            - name: Answer afterwards
              ansible.builtin.ping:
        """,
    # Deliberately careless with the secret (no no_log on echo, register and fail) to
    # prove that redaction catches it; the delivery itself is done properly.
    "test-secret.yml": """\
        ---
        - name: Use a secret
          hosts: all
          gather_facts: false
          tasks:
            - name: Deliver the secret to its destination
              ansible.builtin.copy:
                content: "{{ canary_secret }}"
                dest: "{{ dest }}"
                mode: "0600"
              no_log: true
            - name: Echo the secret
              ansible.builtin.debug:
                msg: "the secret is {{ canary_secret }}"
            - name: Register the secret
              ansible.builtin.set_fact:
                seen_secret: "{{ canary_secret | to_json }}"
            - name: Fail with the secret in the message
              ansible.builtin.fail:
                msg: "refusing {{ canary_secret | to_json }} and {{ canary_secret | quote }}"
              when: fail | default(false) | bool
            - name: Wait with the secret in the module's arguments
              ansible.builtin.wait_for:
                path: /nonexistent/autoops-never
                timeout: "{{ seconds }}"
                msg: "{{ canary_secret }}"
              no_log: true
              when: hold | default(false) | bool
            - name: Keep working for a while
              ansible.builtin.command:
                argv: [sleep, "{{ seconds }}"]
              changed_when: false
              when: seconds | default(0) | int > 0 and not (hold | default(false) | bool)
        """,
}


def make_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in CONTENT:
        src = REPO / name
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "lab"))
        else:
            shutil.copy2(src, dest / name)
    catalog = yaml.safe_load((dest / "catalog.yml").read_text())
    catalog["actions"].update(TEST_ACTIONS)
    (dest / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    for name, text in TEST_PLAYBOOKS.items():
        (dest / "playbooks" / name).write_text(textwrap.dedent(text))
    # Change windows depend on the wall clock, which the CLI and subprocess tests cannot
    # inject: the test copy has none. Window tests declare their own, with a fixed clock.
    policy = yaml.safe_load((dest / "policy.yml").read_text())
    for env in policy["environments"].values():
        env.pop("windows", None)
        env.pop("freezes", None)
    (dest / "policy.yml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return dest


def localise(project: Path, env: str) -> None:
    """Point an environment's inventory at this machine (never at the example addresses)."""
    inv = project / "inventories" / env
    (inv / "hosts.yml").write_text(textwrap.dedent(f"""\
        ---
        all:
          hosts:
            {env}-box:
              ansible_connection: local
              ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
        """))
    for stale in inv.glob("host_vars/*.example.com.yml"):
        stale.unlink()
    (inv / "group_vars" / "all" / "main.yml").write_text(
        (project / "inventories/local/group_vars/all/main.yml").read_text())
    for extra in inv.glob("group_vars/*.yml"):
        extra.unlink()


UNDER_CI = os.environ.get("CI") == "true"


def needs(ready: bool, reason: str) -> pytest.MarkDecorator:
    """Skip without ``ready`` on a developer's machine; under CI=true run (and fail) anyway:
    ./bin/test installs every real part the suite uses."""
    return pytest.mark.skipif(not ready and not UNDER_CI, reason=reason)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def settings(project: Path, tmp_path: Path) -> Settings:
    return Settings(project_dir=project, state_dir=tmp_path / "state", os_user="tester",
                    python=Path(sys.executable), search_path=os.environ.get("PATH", os.defpath),
                    cache_dir=CACHE_DIR, config_dir=tmp_path / "config" / "autoops")


@dataclass
class CliResult:
    status: int  # an ExitStatus, or a wrapped job's own (heartbeat run)
    out: str
    err: str


class _Stdin(io.StringIO):
    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class _Terminal(io.StringIO):
    """A stand-in for stderr on a terminal (the confirmation prompt needs one)."""

    def isatty(self) -> bool:
        return True


def run_cli(settings: Settings, *argv: str, stdin: str = "", tty: bool = False) -> CliResult:
    out, err = io.StringIO(), _Terminal() if tty else io.StringIO()
    status = program(list(argv), out, err, _Stdin(stdin, tty), settings=settings)
    return CliResult(status, out.getvalue(), err.getvalue())


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the installed console scripts against a test project."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTOOPS_", "SOPS_", "EDITOR", "VISUAL"))}
    env.update(AUTOOPS_PROJECT_DIR=str(settings.project_dir),
               AUTOOPS_STATE_DIR=str(settings.state_dir),
               XDG_CONFIG_HOME=str(settings.config_dir.parent))
    if settings.age_key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(settings.age_key_file)
    if settings.editor is not None:
        env["EDITOR"] = settings.editor
    return env


def run_script(settings: Settings, *argv: str, script: str = "autoops",
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / script), *argv], env=cli_env(settings),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False)


@pytest.fixture
def textfile_dir(tmp_path: Path) -> Path:
    """A node_exporter textfile directory for ``autoops metrics``."""
    path = tmp_path / "textfile"
    path.mkdir(mode=0o755)
    return path


def start_supervisord(base: Path, programs: str) -> Path:
    """A real supervisord in ``base`` (socket 0700) running ``programs``: its config file."""
    base.mkdir()
    conf = base / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""\
        [unix_http_server]
        file={base}/supervisor.sock
        chmod=0700
        [supervisord]
        logfile={base}/supervisord.log
        pidfile={base}/supervisord.pid
        childlogdir={base}
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl=unix://{base}/supervisor.sock
        """) + programs)
    subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(conf)], check=True)
    return conf


@pytest.fixture
def supervisor(project: Path, tmp_path: Path) -> Iterator[Path]:
    """A real supervisord running one program, autoops-demo, wired into the local inventory."""
    conf = start_supervisord(tmp_path / "sup", textwrap.dedent("""\
        [program:autoops-demo]
        command=sleep 100000
        startsecs=1
        autorestart=true
        """))
    ctl = [str(VENV_BIN / "supervisorctl"), "-c", str(conf)]
    for _ in range(100):
        state = subprocess.run([*ctl, "status", "autoops-demo"], capture_output=True, text=True,
                               check=False)
        if "RUNNING" in state.stdout:
            break
        subprocess.run(["sleep", "0.1"], check=True)
    host_vars = project / "inventories" / "local" / "host_vars" / "localhost.yml"
    host_vars.write_text(f"---\nautoops_supervisor_config: {conf}\n")
    try:
        yield conf
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, check=False)


def supervisor_pid(conf: Path, name: str = "autoops-demo") -> int:
    out = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(conf), "pid", name],
                         capture_output=True, text=True, check=False).stdout.strip()
    return int(out)
