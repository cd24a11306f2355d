"""``autoops schedule``: run ``autoops watch --env ENV`` on this machine every few minutes.

Where systemd is the init system, a service + timer pair in ``/etc/systemd/system``;
elsewhere (containers, minimal hosts) a file in ``/etc/cron.d``. Both run the same argv
on the same wall-clock grid (``OnCalendar=`` and cron fields come from one interval), as
the account that installed it — the service user in service mode — with the project and
state directory pinned, so the job reads exactly what ``autoops watch`` run by hand would.

Rendering is pure (text from a :class:`Job`); installing writes each file in one step,
checks systemd units with ``systemd-analyze verify`` before they land, and reports
``unchanged`` when the files are already what it would write. autoops only ever
overwrites or removes files that carry its own header.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autoops.common.files import ensure_dir, write_atomic
from autoops.common.names import ENV_NAME, UNIX_NAME
from autoops.errors import ScheduleInvalidError
from autoops.settings import SYSTEM_PATH, Settings

DEFAULT_UNITS_DIR = Path("/etc/systemd/system")
DEFAULT_CRON_DIR = Path("/etc/cron.d")
SYSTEMD_RUNTIME = Path("/run/systemd/system")  # exists iff systemd is PID 1 (sd_booted)
ACTIONS = ("watch", "heal")  # `autoops heal` acts on what watch found: schedule it after
KINDS = ("auto", "systemd", "cron")
HEADER = "# managed by autoops"
MARK = "# autoops-schedule:"
MINUTES = tuple(n for n in range(1, 60) if 60 % n == 0)
HOURS = tuple(n for n in range(1, 25) if 24 % n == 0)
# A oneshot unit has no start timeout by default: a hung watch would hold the timer forever.
START_TIMEOUT = "30min"
# watch exits 5 while an alert fires and 8 when another watch of the env is still running:
# both are watch doing its job, not a failed unit.
SUCCESS_STATUSES = "5 8"

Kind = Literal["systemd", "cron"]
Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]

_INTERVAL = re.compile(r"([1-9][0-9]{0,5})([smh])")
_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_./:=@+,-]+")  # words systemd reads as they are
_META = re.compile(r"([a-z]+)=(\S+)")
_META_KEYS = frozenset({"kind", "action", "env", "every", "user"})


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"})


@dataclass(frozen=True)
class Interval:
    """How often: whole minutes dividing an hour, or whole hours dividing a day.

    Only those repeat evenly on the clock, so cron's ``*/N`` and systemd's ``00/N`` mean
    the same thing and never drift across the hour or the day boundary.
    """

    amount: int
    unit: Literal["m", "h"]

    @property
    def text(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def seconds(self) -> int:
        return self.amount * (60 if self.unit == "m" else 3600)

    @property
    def cron(self) -> str:
        """The five cron fields (minute hour day month weekday)."""
        if self.unit == "m":
            return "* * * * *" if self.amount == 1 else f"*/{self.amount} * * * *"
        if self.amount == 24:
            return "0 0 * * *"
        return "0 * * * *" if self.amount == 1 else f"0 */{self.amount} * * *"

    @property
    def on_calendar(self) -> str:
        """The same grid as :attr:`cron`, as a systemd calendar event."""
        if self.unit == "m":
            return "*-*-* *:*:00" if self.amount == 1 else f"*-*-* *:00/{self.amount}:00"
        return "*-*-* 00:00:00" if self.amount == 24 else f"*-*-* 00/{self.amount}:00:00"


def parse_interval(text: str) -> Interval:
    """``5m``, ``15m``, ``2h`` … or ScheduleInvalidError (cron cannot repeat anything else)."""
    shown = repr(text[:40])
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ScheduleInvalidError(f"--every {shown} is not an interval like 5m or 2h")
    amount, unit = int(match[1]), match[2]
    if unit == "s":
        raise ScheduleInvalidError(f"--every {shown}: schedules run in whole minutes (cron's "
                                   "resolution), and a watch run takes seconds itself")
    if unit == "m" and amount not in MINUTES:
        raise ScheduleInvalidError(f"--every {shown}: minutes must divide an hour evenly")
    if unit == "h" and amount not in HOURS:
        raise ScheduleInvalidError(f"--every {shown}: hours must divide a day evenly")
    return Interval(amount, "m" if unit == "m" else "h")


@dataclass(frozen=True)
class Job:
    """What a schedule runs, how often, as whom, with which pinned variables."""

    action: str
    env: str
    every: Interval
    user: str
    argv: tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()
    log: Path | None = None  # where cron appends the output (systemd has the journal)
    mode: str = "same-user"

    @property
    def name(self) -> str:
        """``autoops-watch-ENV``: the cron file and the unit names (no dots: run-parts)."""
        return f"autoops-{self.action}-{self.env}"


def launcher(argv0: str | None = None, executable: str | None = None) -> tuple[str, ...]:
    """The command that starts this autoops: its resolved script, the venv's, or ``-m``.

    ``sys.argv[0]`` is the console script when autoops was started as one (from a venv,
    pipx, ``./bin/autoops``); under ``python -m autoops`` or a test runner it is not, and
    the ``autoops`` script next to the interpreter is.
    """
    first = sys.argv[0] if argv0 is None else argv0
    python = Path(sys.executable if executable is None else executable)
    if Path(first).name == "autoops":
        found = first if "/" in first else shutil.which(first)
        if found:
            script = Path(found).resolve()
            if script.is_file() and os.access(script, os.X_OK):
                return (str(script),)
    beside = python.absolute().parent / "autoops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside),)
    return (str(python.absolute()), "-m", "autoops")


def job_for(settings: Settings, action: str, env: str, every: Interval,
            command: tuple[str, ...] | None = None) -> Job:
    """The job ``settings`` would run: in service mode as the service user, via its launcher.

    Same-user mode pins AUTOOPS_PROJECT_DIR and AUTOOPS_STATE_DIR (and the age key file,
    audit witness and metrics directory, when set), because cron and
    systemd start the job without this shell's environment; service mode pins nothing
    (the root-owned config does, and the launcher ignores the caller's variables).
    """
    _check_names(action, env)
    if settings.service is not None:
        if settings.service.launcher is None:
            raise ScheduleInvalidError(
                f"{settings.service.path} names no launcher for the schedule to run",
                remedy="Re-run `autoops service install …` as root; it writes the launcher.")
        user = settings.service.user
        argv0: tuple[str, ...] = (str(settings.service.launcher),)
        environment: tuple[tuple[str, str], ...] = ()
    else:
        user, argv0 = settings.account, command or launcher()
        environment = (("AUTOOPS_PROJECT_DIR", str(settings.project_dir)),
                       ("AUTOOPS_STATE_DIR", str(settings.state_dir)))
        # What this shell set and the job must keep: its key file, witness and metrics.
        if settings.age_key_file is not None:
            environment += (("SOPS_AGE_KEY_FILE", str(settings.age_key_file)),)
        if settings.witness:
            environment += (("AUTOOPS_AUDIT_WITNESS", settings.witness),)
        if settings.metrics_dir is not None:
            environment += (("AUTOOPS_METRICS_DIR", str(settings.metrics_dir)),)
    if not re.fullmatch(UNIX_NAME, user):
        raise ScheduleInvalidError(f"cannot schedule as {user!r}: not a user name cron and "
                                   "systemd accept", remedy="Run it as an account with a "
                                   "passwd entry (lowercase letters, digits, _ and -).")
    if not Path(argv0[0]).is_absolute():
        raise ScheduleInvalidError(f"the launcher {argv0[0]!r} is not an absolute path",
                                   remedy="Run autoops by its absolute path, or from its venv.")
    return Job(action, env, every, user, (*argv0, action, "--env", env), environment,
               settings.state_dir / f"schedule-{env}.log", settings.mode)


def _check_names(action: str, env: str) -> None:
    if action not in ACTIONS:
        raise ScheduleInvalidError(f"cannot schedule {action!r}: only {', '.join(ACTIONS)}",
                                   remedy="Use --action watch (or heal).")
    if not re.fullmatch(ENV_NAME, env):
        raise ScheduleInvalidError(f"{env!r} is not an environment name",
                                   remedy="Use an environment declared in policy.yml.")


# -- rendering (pure) -----------------------------------------------------------------


def _words_ok(words: list[str], where: str, *, backslash: bool = True) -> None:
    """Refuse what a one-line file cannot carry (controls), or cron cannot (a backslash)."""
    for word in words:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in word) or (not backslash and "\\" in word):
            raise ScheduleInvalidError(
                f"{word!r} cannot be carried safely in {where}",
                remedy="Use paths without control characters"
                + ("." if backslash else " or backslashes (cron treats them specially)."))


def systemd_quote(word: str, *, command: bool = True) -> str:
    """One word as systemd reads it: C-quoted if needed, ``%`` (and in ExecStart ``$``) doubled.

    Specifiers (``%h``) are expanded in ExecStart= and Environment= alike; ``$NAME`` only
    in ExecStart=.
    """
    _words_ok([word], "a systemd unit")
    escaped = word.replace("%", "%%")
    if command:
        escaped = escaped.replace("$", "$$")
    if _SYSTEMD_PLAIN.fullmatch(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header(job: Job, kind: Kind, removes: str) -> list[str]:
    return [(f"{HEADER}: `autoops schedule remove --env {job.env}` removes {removes}; "
             "edits are overwritten by `autoops schedule install`."),
            (f"{MARK} kind={kind} action={job.action} env={job.env} every={job.every.text} "
             f"user={job.user} mode={job.mode}")]


def render_service(job: Job) -> str:
    """The oneshot service the timer starts: one watch run, as ``job.user``."""
    lines = [*_header(job, "systemd", "this unit and its timer"), "[Unit]",
             f"Description=autoops {job.action} --env {job.env}, every {job.every.text}",
             "Wants=network-online.target", "After=network-online.target", "",
             "[Service]", "Type=oneshot", f"User={job.user}"]
    if job.environment:
        lines.append("Environment=" + " ".join(systemd_quote(f"{k}={v}", command=False)
                                               for k, v in job.environment))
    if "$" in job.argv[0]:  # the executable's path is not expanded, its argv[0] copy is
        raise ScheduleInvalidError(f"the launcher path {job.argv[0]!r} holds a '$'",
                                   remedy="Install autoops under a path without '$'.")
    lines += ["ExecStart=" + " ".join(systemd_quote(word) for word in job.argv),
              f"SuccessExitStatus={SUCCESS_STATUSES}", f"TimeoutStartSec={START_TIMEOUT}", ""]
    return "\n".join(lines)


def render_timer(job: Job) -> str:
    """The timer: on the clock grid, catching up once after the machine was off."""
    return "\n".join([
        *_header(job, "systemd", "this timer and its service"), "[Unit]",
        f"Description=autoops {job.action} --env {job.env}, every {job.every.text}", "",
        "[Timer]", f"OnCalendar={job.every.on_calendar}", "Persistent=true", "AccuracySec=1s",
        f"Unit={job.name}.service", "", "[Install]", "WantedBy=timers.target", ""])


def cron_command(job: Job) -> str:
    r"""The command field: shell-quoted words, output appended to the log, ``%`` escaped.

    cron hands the field to ``/bin/sh -c`` after turning each unescaped ``%`` into a
    newline, so every word is :func:`shlex.quote`-d and every ``%`` becomes ``\%``.
    """
    values = [*job.argv, *(v for _, v in job.environment), str(job.log or "")]
    _words_ok(values, "a cron entry", backslash=False)
    words = [f"{k}={shlex.quote(v)}" for k, v in job.environment]
    words += [shlex.quote(word) for word in job.argv]
    if job.log is not None:
        words += [">>" + shlex.quote(str(job.log)), "2>&1"]
    return " ".join(words).replace("%", "\\%")


def render_cron(job: Job) -> str:
    """An ``/etc/cron.d`` file: header, shell, PATH and the one entry (with its user field)."""
    return "\n".join([*_header(job, "cron", "this file"), "SHELL=/bin/sh", f"PATH={SYSTEM_PATH}",
                      f"{job.every.cron} {job.user}  {cron_command(job)}", ""])


# -- installing, listing, removing ----------------------------------------------------


def systemd_runs() -> bool:
    """Whether systemd is PID 1 here (what ``sd_booted()`` checks)."""
    return SYSTEMD_RUNTIME.is_dir()


def choose_kind(kind: str, running: bool) -> Kind:
    if kind == "systemd":
        return "systemd"
    if kind == "cron":
        return "cron"
    if kind == "auto":
        return "systemd" if running else "cron"
    raise ScheduleInvalidError(f"--kind {kind!r}: use auto, systemd or cron",
                               remedy="Use --kind auto (systemd where it runs, else cron).")


def install(job: Job, kind: str = "auto", *, units_dir: Path = DEFAULT_UNITS_DIR,
            cron_dir: Path = DEFAULT_CRON_DIR, systemd_running: bool | None = None,
            activate: bool | None = None, run: Runner = _run) -> dict[str, Any]:
    """Write (or confirm) the job's files; switch off the other kind's; report what changed.

    ``activate`` (default: systemd runs and the units go to /etc/systemd/system) reloads
    systemd and enables the timer now.
    """
    running = systemd_runs() if systemd_running is None else systemd_running
    chosen = choose_kind(kind, running)
    files = _files(job, chosen, units_dir, cron_dir)
    for path in files:
        _refuse_foreign(path)
    verified: bool | None = None
    if chosen == "systemd":
        verified = verify_units(job, files, run)
    elif job.log is not None:
        _log_dir(job.log, job.mode)
    changes = {str(path): _put(path, text) for path, text in files.items()}
    other: Kind = "cron" if chosen == "systemd" else "systemd"
    replaced = _remove_kind(job.name, other, units_dir=units_dir, cron_dir=cron_dir,
                            running=running, activate=activate, run=run)
    if activate is None:
        activate = running and _same_dir(units_dir, DEFAULT_UNITS_DIR)
    activated = chosen == "systemd" and activate
    if activated:
        timer = f"{job.name}.timer"
        changed = "written" in changes.values()
        if changed:
            _checked(run(["systemctl", "daemon-reload"]), "systemctl daemon-reload")
        _checked(run(["systemctl", "enable", timer]), f"systemctl enable {timer}")
        verb = "restart" if changed else "start"  # a changed timer takes its new calendar now
        _checked(run(["systemctl", verb, timer]), f"systemctl {verb} {timer}")
    return {"kind": chosen, "action": job.action, "env": job.env, "every": job.every.text,
            "user": job.user, "mode": job.mode, "argv": list(job.argv),
            "environment": dict(job.environment),
            "log": str(job.log) if chosen == "cron" and job.log else None,
            "files": changes, "changed": "written" in changes.values(), "replaced": replaced,
            "verified": verified, "activated": activated, "systemd_running": running}


def listing(units_dir: Path = DEFAULT_UNITS_DIR, cron_dir: Path = DEFAULT_CRON_DIR,
            *, systemd_running: bool | None = None, run: Runner = _run) -> list[dict[str, Any]]:
    """Every schedule autoops wrote in these directories (both kinds, whichever runs)."""
    running = systemd_runs() if systemd_running is None else systemd_running
    live = running and _same_dir(units_dir, DEFAULT_UNITS_DIR)
    rows = []
    for timer in _glob(units_dir, "autoops-*.timer"):
        meta = _meta(timer)
        if meta is None:
            continue
        service = timer.with_suffix(".service")
        active = None
        if live:
            active = run(["systemctl", "is-active", "--quiet", timer.name]).returncode == 0
        rows.append({**meta, "kind": "systemd", "name": timer.stem, "active": active,
                     "paths": [str(timer), *([str(service)] if service.exists() else [])]})
    for path in _glob(cron_dir, "autoops-*"):
        meta = _meta(path)
        if meta is not None:
            rows.append({**meta, "kind": "cron", "name": path.name, "active": None,
                         "paths": [str(path)]})
    return rows


def remove(action: str, env: str, *, units_dir: Path = DEFAULT_UNITS_DIR,
           cron_dir: Path = DEFAULT_CRON_DIR, systemd_running: bool | None = None,
           activate: bool | None = None, run: Runner = _run) -> dict[str, Any]:
    """Remove the schedule of ``env`` (both kinds); a file autoops did not write stays.

    ``env`` need not be in the policy any more: a stale schedule must still be removable.
    """
    _check_names(action, env)
    running = systemd_runs() if systemd_running is None else systemd_running
    name = f"autoops-{action}-{env}"
    removed: list[str] = []
    for kind in ("systemd", "cron"):
        removed += _remove_kind(name, kind, units_dir=units_dir, cron_dir=cron_dir,
                                running=running, activate=activate, run=run)
    candidates = [units_dir / f"{name}.timer", units_dir / f"{name}.service", cron_dir / name]
    kept = [str(p) for p in candidates if p.exists() and str(p) not in removed]
    return {"action": action, "env": env, "removed": removed, "kept": kept}


def verify_units(job: Job, files: Mapping[Path, str], run: Runner = _run) -> bool:
    """``systemd-analyze verify`` on a copy, before anything lands; False if it is absent.

    verify exits 0 on some problems it only warns about ("ignoring"), so any line that
    names one of these units counts as a failure too.
    """
    analyze = shutil.which("systemd-analyze", path=SYSTEM_PATH)
    if analyze is None:
        return False
    with tempfile.TemporaryDirectory(prefix="autoops-units-") as tmp:
        copies = []
        for path, text in files.items():
            copy = Path(tmp) / path.name
            copy.write_text(text, encoding="utf-8")
            copies.append(str(copy))
        proc = run([analyze, "verify", *copies])
    said = [line for line in (proc.stdout + proc.stderr).splitlines()
            if job.name in line or tmp in line]
    if proc.returncode != 0 or said:
        raise ScheduleInvalidError(
            "the generated units do not verify: " + " | ".join(said or [
                f"systemd-analyze exit status {proc.returncode}"]).replace(tmp + "/", ""),
            remedy=f"Check that {job.argv[0]} exists and is executable; nothing was written.")
    return True


def _files(job: Job, kind: Kind, units_dir: Path, cron_dir: Path) -> dict[Path, str]:
    if kind == "systemd":
        return {units_dir / f"{job.name}.service": render_service(job),
                units_dir / f"{job.name}.timer": render_timer(job)}
    return {cron_dir / job.name: render_cron(job)}


def _remove_kind(name: str, kind: Kind, *, units_dir: Path, cron_dir: Path, running: bool,
                 activate: bool | None, run: Runner) -> list[str]:
    if kind == "cron":
        paths = [cron_dir / name]
    else:
        paths = [units_dir / f"{name}.timer", units_dir / f"{name}.service"]
    ours = [path for path in paths if _meta(path) is not None]
    if not ours:
        return []
    if activate is None:
        activate = running and _same_dir(units_dir, DEFAULT_UNITS_DIR)
    live = kind == "systemd" and activate
    if live:
        _checked(run(["systemctl", "disable", "--now", f"{name}.timer"]),
                 f"systemctl disable --now {name}.timer")
    for path in ours:
        try:
            path.unlink()
        except PermissionError:
            raise _denied(path) from None
    if live:
        _checked(run(["systemctl", "daemon-reload"]), "systemctl daemon-reload")
    return [str(path) for path in ours]


def _put(path: Path, text: str) -> str:
    """Write ``path`` 0644 (root's, when root) in one step, unless it already is that."""
    data = text.encode("utf-8")
    root = os.geteuid() == 0
    try:
        st = path.lstat()
        if (stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
                and (not root or (st.st_uid, st.st_gid) == (0, 0))
                and path.read_bytes() == data):
            return "unchanged"
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_atomic(path, data, 0o644)  # cron ignores a group- or other-writable file
        if root:
            os.chown(path, 0, 0)
    except PermissionError:
        raise _denied(path) from None
    return "written"


def _denied(path: Path) -> ScheduleInvalidError:
    return ScheduleInvalidError(
        f"cannot write {path}: permission denied",
        remedy="Run it as root (`sudo autoops schedule …`; for a service-mode machine's "
               "service user add --service-config /etc/autoops/service.yml), or give "
               "--units-dir/--cron-dir a directory you can write.")


def _refuse_foreign(path: Path) -> None:
    if (path.exists() or path.is_symlink()) and _meta(path) is None:
        raise ScheduleInvalidError(
            f"{path} exists and autoops did not write it",
            remedy="Move it away yourself (autoops never overwrites a file it did not write), "
                   "then run `autoops schedule install` again.")


def _meta(path: Path) -> dict[str, str] | None:
    """The ``# autoops-schedule:`` line of a regular file autoops wrote, or None."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        lines = path.read_text(encoding="utf-8").splitlines()[:2]
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 2 or not lines[0].startswith(HEADER) or not lines[1].startswith(MARK):
        return None
    meta = dict(_META.findall(lines[1][len(MARK):]))
    if not set(meta) >= _META_KEYS:
        return None
    return {key: meta[key] for key in sorted(_META_KEYS | {"mode"}) if key in meta}


def _glob(directory: Path, pattern: str) -> list[Path]:
    try:
        return sorted(directory.glob(pattern))
    except OSError:
        return []


def _log_dir(log: Path, mode: str) -> None:
    """The log's directory must exist before cron's ``>>`` opens it, or the job never starts."""
    if mode == "service":  # the service user's, created by `autoops service install`
        if not log.parent.is_dir():
            raise ScheduleInvalidError(f"the state directory {log.parent} does not exist",
                                       remedy="Run `autoops service install …` as root first.")
        return
    ensure_dir(log.parent)


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _checked(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise ScheduleInvalidError(
            f"{what} failed: {(proc.stderr or proc.stdout).strip()[-300:]}",
            remedy="`systemctl status` and `journalctl -xe` say why; fix that and run it again.")
