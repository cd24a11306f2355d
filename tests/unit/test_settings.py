from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoops.errors import ServiceCallerError, ServiceInvalidError
from autoops.settings import SERVICE_CONFIG_VAR, SYSTEM_PATH, Settings
from tests.conftest import REPO, UNDER_CI, needs


def test_state_dir_follows_xdg_and_override() -> None:
    xdg = Settings.from_environ({"HOME": "/home/u", "XDG_STATE_HOME": "/x/state"})
    assert xdg.state_dir == Path("/x/state/autoops")
    home = Settings.from_environ({"HOME": "/home/u"})
    assert home.state_dir == Path("/home/u/.local/state/autoops")
    explicit = Settings.from_environ({"HOME": "/home/u", "AUTOOPS_STATE_DIR": "/s"})
    assert explicit.state_dir == Path("/s")


def test_project_is_never_taken_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "catalog.yml").write_text("version: 1\nactions: {}\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_environ({"HOME": "/h"}).project_dir == REPO
    custom = Settings.from_environ({"HOME": "/h", "AUTOOPS_PROJECT_DIR": str(tmp_path)})
    assert custom.project_dir == tmp_path
    assert custom.catalog_path == tmp_path / "catalog.yml"


# -- the environment is an allowlist ----------------------------------------------------

HOSTILE = {"ANSIBLE_ROLES_PATH": "/tmp/evil/roles", "ANSIBLE_LOG_PATH": "/tmp/evil.log",
           "ANSIBLE_VERBOSITY": "4", "PYTHONPATH": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so",
           "SOPS_AGE_KEY_CMD": "cat /tmp/key", "AUTOOPS_RUN_ID": "forged", "TMPDIR": "/tmp/e",
           "GIT_DIR": "/tmp/evil.git", "BASH_ENV": "/tmp/evil.sh", "PYTHONTZPATH": "/tmp/tz"}


def test_children_get_only_the_allowlist_and_what_autoops_sets() -> None:
    env = {"HOME": "/home/u", "PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_TIME": "C",
           "SSH_AUTH_SOCK": "/run/u/agent", **HOSTILE}
    settings = Settings.from_environ(env)
    child = settings.child_environ({"ANSIBLE_CONFIG": "/p/ansible.cfg"})
    assert set(child) == {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_TIME", "SSH_AUTH_SOCK",
                          "ANSIBLE_CONFIG"}
    assert child["PATH"].endswith(":/usr/bin")
    assert child["HOME"] == "/home/u"
    assert settings.ignored_environ == tuple(sorted(HOSTILE))


def test_autoops_own_settings_are_not_reported_as_ignored() -> None:
    settings = Settings.from_environ({"HOME": "/h", "AUTOOPS_STATE_DIR": "/s",
                                      "SOPS_AGE_KEY_FILE": "/k", "ANSIBLE_CONFIG": "/x"})
    assert settings.ignored_environ == ("ANSIBLE_CONFIG",)
    assert settings.child_environ().keys().isdisjoint({"AUTOOPS_STATE_DIR", "SOPS_AGE_KEY_FILE",
                                                        "ANSIBLE_CONFIG"})


def test_the_os_user_is_not_taken_from_user_or_logname() -> None:
    settings = Settings.from_environ({"HOME": "/h", "USER": "mallory", "LOGNAME": "mallory"})
    assert settings.os_user == pwd.getpwuid(os.getuid()).pw_name


def test_an_execution_node_reads_what_the_controller_asked_for_here_only() -> None:
    """autoops.node's forced command takes sshd's SSH_ORIGINAL_COMMAND from settings."""
    asked = Settings.from_environ({"HOME": "/h", "SSH_ORIGINAL_COMMAND": "python3 -m x info"})
    assert asked.ssh_original_command == "python3 -m x info"
    assert Settings.from_environ({"HOME": "/h"}).ssh_original_command is None
    assert "SSH_ORIGINAL_COMMAND" not in asked.child_environ()


def test_zone_data_ignores_pythontzpath(tmp_path: Path) -> None:
    """A fake UTC zone on PYTHONTZPATH must not move change windows."""
    fake = tmp_path / "zones"
    fake.mkdir()
    shutil.copy("/usr/share/zoneinfo/Etc/GMT-12", fake / "UTC")
    code = ("from datetime import datetime, UTC; from autoops.core import windows; "
            "print(windows.parse_schedule(None, []) is not None, "
            "datetime(2026,1,1,tzinfo=UTC).astimezone(windows.zone('UTC')).hour)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONTZPATH": str(fake)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "0"]


# -- service mode ---------------------------------------------------------------------

def service_config(tmp_path: Path, **changes: object) -> Path:
    base = tmp_path / "etc"
    base.mkdir(mode=0o755, exist_ok=True)
    doc = {"version": 1, "user": pwd.getpwuid(os.geteuid()).pw_name, "operators": "root",
           "project_dir": str(REPO), "state_dir": str(tmp_path / "state"),
           "config_dir": str(tmp_path / "keys"), **changes}
    path = base / "service.yml"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o644)
    return path


@pytest.fixture
def open_tmp(tmp_path: Path) -> Path:
    """pytest's tmp_path, with every directory above it safe for a root-owned config."""
    for parent in [tmp_path, *tmp_path.parents]:
        if parent.stat().st_uid == 0 and parent.stat().st_mode & 0o022 and \
                not parent.stat().st_mode & stat.S_ISVTX:
            (pytest.fail if UNDER_CI else pytest.skip)(f"{parent} is writable by others")
    return tmp_path


needs_root = needs(os.geteuid() == 0, "service configs are root-owned")


@needs_root
def test_service_mode_takes_nothing_from_the_callers_environment(open_tmp: Path) -> None:
    config = service_config(open_tmp)
    settings = Settings.from_environ({SERVICE_CONFIG_VAR: str(config), "HOME": "/h",
                                      "AUTOOPS_PROJECT_DIR": "/tmp/copy",
                                      "AUTOOPS_STATE_DIR": "/tmp/state-copy",
                                      "SOPS_AGE_KEY_FILE": "/tmp/k", "EDITOR": "vi",
                                      "SSH_AUTH_SOCK": "/tmp/agent", **HOSTILE})
    assert settings.mode == "service"
    assert settings.project_dir == REPO
    assert settings.state_dir == open_tmp / "state"
    assert settings.age_key_file is None
    assert settings.editor is None
    assert "SSH_AUTH_SOCK" not in settings.child_environ()
    assert settings.search_path == SYSTEM_PATH
    assert "AUTOOPS_PROJECT_DIR" in settings.ignored_environ


@needs_root
@pytest.mark.parametrize("harm", ["group-writable", "not-root", "symlink", "unknown-key",
                                  "relative-path"])
def test_an_untrustworthy_service_config_is_refused(open_tmp: Path, harm: str) -> None:
    config = service_config(open_tmp, **({"extra": 1} if harm == "unknown-key" else {}),
                            **({"state_dir": "state"} if harm == "relative-path" else {}))
    if harm == "group-writable":
        config.chmod(0o664)
    elif harm == "not-root":
        os.chown(config, 65534, 65534)
    elif harm == "symlink":
        link = open_tmp / "link.yml"
        link.symlink_to(config)
        config = link
    with pytest.raises(ServiceInvalidError):
        Settings.from_environ({SERVICE_CONFIG_VAR: str(config), "HOME": "/h"})


@needs_root
def test_the_launcher_run_by_another_user_says_to_use_sudo(open_tmp: Path) -> None:
    config = service_config(open_tmp, user="nobody")
    with pytest.raises(ServiceCallerError) as caught:
        Settings.from_environ({SERVICE_CONFIG_VAR: str(config), "HOME": "/h"})
    assert "sudo -u nobody autoops" in caught.value.remedy


@needs_root
@pytest.mark.parametrize(("sudo_user", "sudo_uid", "ok"), [
    ("root", "0", True), ("nobody", "0", False), ("root", "x", False), ("", "0", False)])
def test_the_actor_is_the_sudo_caller_checked_against_passwd(
        open_tmp: Path, sudo_user: str, sudo_uid: str, ok: bool) -> None:
    config = service_config(open_tmp)
    env = {SERVICE_CONFIG_VAR: str(config), "HOME": "/h", "SUDO_USER": sudo_user,
           "SUDO_UID": sudo_uid}
    if ok:
        assert Settings.from_environ(env).os_user == "root"
    else:
        with pytest.raises(ServiceCallerError):
            Settings.from_environ(env)


_SHOW_ENVIRON = """
import os, sys
from autoops.settings import Settings
settings = Settings.from_environ()
assert settings.age_key == os.environ.get("EXPECTED"), settings.age_key
read, write = os.pipe()
child = os.fork()
if child == 0:  # a child forked to exec something shows the parent's block until it does
    os.write(write, open("/proc/self/environ", "rb").read())
    os._exit(0)
os.close(write)
os.waitpid(child, 0)
forked = b""
while chunk := os.read(read, 65536):
    forked += chunk
sys.stdout.buffer.write(open("/proc/self/environ", "rb").read() + b"\\n--\\n" + forked)
"""


def test_an_inline_age_key_is_forgotten_where_proc_shows_it() -> None:
    """Once read, SOPS_AGE_KEY is gone from /proc/PID/environ of autoops and of its forks."""
    key = "AGE-SECRET-KEY-1" + "Q" * 58
    env = {"PATH": os.defpath, "HOME": "/nonexistent", "SOPS_AGE_KEY": key, "EXPECTED": key,
           "AUTOOPS_PROJECT_DIR": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _SHOW_ENVIRON], env=env, cwd=REPO,
                         capture_output=True, check=True).stdout
    own, forked = out.split(b"\n--\n")
    assert b"PATH=" in own  # the blocks were read, not empty
    assert b"PATH=" in forked
    assert b"SOPS_AGE_KEY=" + key.encode() not in own
    assert b"SOPS_AGE_KEY=" + key.encode() not in forked
    assert b"EXPECTED=" + key.encode() in own  # only the one variable is wiped
