"""Execution through ansible-runner: the only module that imports ansible_runner.

Every run gets a fresh private data dir (0700) under the state directory that is
removed afterwards, ``suppress_env_files`` and no stdout artifact, and parameters
in an extra-vars file whose strings are tagged ``!unsafe`` so Ansible never templates
them. Events are normalised into :class:`HostResult` and handed to the caller; no
event is written to disk by runner (the handler returns False).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from autoops.errors import RunnerError
from autoops.procs import descendants, kill_leftovers

HOST_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
_MSG_LIMIT = 2000
# No stdout artifact (it would hold task output); poll cancel_callback twice a second.
RUNNER_SETTINGS = {"suppress_output_file": True, "pexpect_timeout": 0.5}


@dataclass(frozen=True)
class RunSpec:
    """Everything one ansible-runner invocation needs; paths are absolute."""

    run_id: str
    project_dir: Path
    playbook: Path
    inventory: Path
    limit: str | None
    extravars: Mapping[str, Any]
    check_mode: bool
    runs_dir: Path
    bin_dir: Path
    search_path: str
    environ: Mapping[str, str] = field(default_factory=dict)  # e.g. where the age key is


@dataclass(frozen=True)
class HostResult:
    """One task's result on one host, as autoops records it."""

    host: str
    task: str
    action: str
    status: str  # ok | changed | failed | ignored | skipped | unreachable
    changed: bool
    msg: str | None
    rc: int | None
    duration: float | None
    report: Any = None
    diff: Any = None

    def to_dict(self) -> dict[str, Any]:
        data = {"host": self.host, "task": self.task, "module": self.action,
                "status": self.status, "changed": self.changed, "msg": self.msg, "rc": self.rc,
                "duration": self.duration}
        if self.report is not None:
            data["report"] = self.report
        if self.diff:
            data["diff"] = self.diff
        return data


@dataclass
class RunOutcome:
    status: str  # successful | failed | canceled | timeout
    rc: int
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)


class _Unsafe(str):
    """A string that Ansible must treat as data, never as a template."""


yaml.SafeDumper.add_representer(
    _Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style='"')
)


def mark_unsafe(value: Any) -> Any:
    """Tag every string (keys stay plain) so that Ansible never templates it."""
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, Mapping):
        return {str(k): mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark_unsafe(v) for v in value]
    return value


def unsafe_extravars_yaml(extravars: Mapping[str, Any]) -> str:
    return yaml.safe_dump(mark_unsafe(extravars), sort_keys=True, allow_unicode=True)


def normalise(event: Mapping[str, Any]) -> HostResult | None:
    """Turn a runner host event into a HostResult; other events give None."""
    kind = HOST_EVENTS.get(str(event.get("event")))
    if kind is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    if not isinstance(res, dict):
        res = {"msg": str(res)}
    changed = bool(res.get("changed", False))
    if kind == "ok" and changed:
        kind = "changed"
    if kind == "failed" and data.get("ignore_errors"):
        kind = "ignored"
    msg = res.get("msg")
    if kind in {"failed", "ignored", "unreachable"} and not msg:
        msg = res.get("stderr") or res.get("module_stderr")
    report = res.get("autoops_report")
    if report is None:  # a role's set_fact of ROLE_report = {kind: …, …}
        facts = res.get("ansible_facts") or {}
        report = next((v for k, v in facts.items() if k.endswith("_report")
                       and isinstance(v, dict) and "kind" in v), None)
    rc = res.get("rc")
    return HostResult(
        host=str(data.get("host", "")),
        task=str(data.get("task", "")),
        action=str(data.get("task_action", "")),
        status=kind,
        changed=changed,
        msg=str(msg)[:_MSG_LIMIT] if msg else None,
        rc=rc if isinstance(rc, int) else None,
        duration=data.get("duration"),
        report=report,
        diff=res.get("diff") or None,
    )


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (ansible workers call setsid() and outlive a cancel)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def execute(spec: RunSpec, on_result: Callable[[HostResult], None],
            cancel: Callable[[], bool] = lambda: False) -> RunOutcome:
    """Run the playbook; ``on_result`` sees each host result as it happens.

    ``on_result`` must not raise into ansible-runner (that orphans ansible-playbook):
    a failing callback cancels the run and its exception is re-raised afterwards.
    """
    spec.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{spec.run_id}.", dir=spec.runs_dir))
    outcome = RunOutcome(status="failed", rc=-1)
    failure: list[BaseException] = []
    become_subreaper()
    before = descendants(os.getpid())
    finished = False
    lock = threading.Lock()

    def handle(event: dict[str, Any]) -> bool:
        try:
            _collect(event, outcome, on_result)
        except Exception as exc:  # noqa: BLE001 - re-raised after the run has stopped
            with lock:
                failure.append(exc)
        return False  # never write events to disk

    def status_changed(status: str) -> None:
        # runner writes artifacts/<ident>/command (argv, cwd and the whole environment)
        # unconditionally before it spawns ansible-playbook; by "running" it is no longer read.
        if status == "running":
            (data_dir / "artifacts" / "run" / "command").unlink(missing_ok=True)

    try:
        vars_file = data_dir / "autoops-extravars.yml"
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(unsafe_extravars_yaml(spec.extravars))
        # ansible-runner 2.4 ignores settings= unless env/settings exists (it resets them
        # to {} when the file is missing), so they go in the file: no secrets in it.
        (data_dir / "env").mkdir(mode=0o700)
        (data_dir / "env" / "settings").write_text(json.dumps(RUNNER_SETTINGS))
        cmdline = f"-e @{vars_file}" + (" --check --diff" if spec.check_mode else "")
        try:
            result = ansible_runner.run(
                private_data_dir=str(data_dir),
                project_dir=str(spec.project_dir),
                host_cwd=str(spec.project_dir),
                playbook=str(spec.playbook),
                inventory=str(spec.inventory),
                limit=spec.limit,
                cmdline=cmdline,
                ident="run",
                envvars=_envvars(spec, data_dir),
                suppress_env_files=True,
                quiet=True,
                event_handler=handle,
                status_handler=lambda status, **_kw: status_changed(str(status.get("status"))),
                cancel_callback=lambda: bool(failure) or cancel(),
            )
        except Exception as exc:
            raise RunnerError(f"ansible-runner failed to run {spec.playbook.name}: {exc}") from exc
        outcome.status = str(result.status)
        outcome.rc = int(result.rc) if result.rc is not None else -1
        finished = outcome.status in {"successful", "failed"}
    finally:
        if not finished:  # cancelled, timed out or crashed: nothing of the run may survive
            outcome.killed = kill_leftovers(before)
        shutil.rmtree(data_dir, ignore_errors=True)
    if failure:
        raise failure[0]
    return outcome


def _collect(event: Mapping[str, Any], outcome: RunOutcome,
             on_result: Callable[[HostResult], None]) -> None:
    kind = event.get("event")
    if kind == "playbook_on_stats":
        data = event.get("event_data", {})
        for counter in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
            for host, count in (data.get(counter) or {}).items():
                outcome.stats.setdefault(host, {})[counter] = int(count)
        return
    if kind in {"verbose", "error"}:
        text = str(event.get("stdout", "")).strip()
        if "ERROR!" in text or "[ERROR]" in text or text.startswith("ERROR"):
            outcome.errors.append(text[:_MSG_LIMIT])
        return
    if kind == "warning":
        outcome.warnings.append(str(event.get("stdout", "")).strip()[:_MSG_LIMIT])
        return
    result = normalise(event)
    if result is not None:
        on_result(result)


def _envvars(spec: RunSpec, data_dir: Path) -> dict[str, str]:
    local_tmp = data_dir / "tmp"
    local_tmp.mkdir(mode=0o700)
    return {
        "ANSIBLE_CONFIG": str(spec.project_dir / "ansible.cfg"),
        "PATH": f"{spec.bin_dir}{os.pathsep}{spec.search_path}",
        "ANSIBLE_LOCAL_TEMP": str(local_tmp),  # leftovers of a killed run stay in data_dir
        "ANSIBLE_KEEP_REMOTE_FILES": "0",  # would turn pipelining off and keep module args
        "ANSIBLE_HOST_KEY_CHECKING": "True",  # an inventory may relax it per host
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        **spec.environ,
    }
