"""What ``watch_facts`` reads on a host beyond /proc: services, proxy logs, heartbeats, TLS, backups.

Each reader returns plain data and judges nothing: thresholds are applied on the
controller (autoops/watch/), so a host can be read in one module call and a change of
threshold needs no change here. Standard library only; commands go through the
``Run`` callable (the module's ``run_command`` with an argv list), so the readers are
unit-tested without a host.
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
import socket
import ssl
import time
import xmlrpc.client
from calendar import timegm
from collections.abc import Callable
from typing import Any

Run = Callable[[list[str]], tuple[int, str, str]]
"""argv → (return code, stdout, stderr); never a shell string."""

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$")
SUPERVISOR_CONFIG = "/etc/supervisor/supervisord.conf"


# -- services: systemd units, supervisord programs, Docker containers ------------------------

def systemd_running() -> bool:
    """systemd is PID 1 (what ``sd_booted`` checks)."""
    return os.path.isdir("/run/systemd/system")


def parse_systemd_show(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_supervisor_status(text: str) -> dict[str, dict[str, Any]]:
    """``supervisorctl status`` lines by program: state and pid (when it runs)."""
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[1].isupper():
            continue
        detail = parts[2] if len(parts) > 2 else ""
        pid = re.search(r"\bpid (\d+)", detail)
        found[parts[0]] = {"state": parts[1], "pid": pid.group(1) if pid else None,
                           "detail": detail}
    return found


def _systemd(name: str, run: Run) -> dict[str, Any] | str:
    properties = "--property=LoadState,ActiveState,SubState,NRestarts,MainPID"
    rc, out, err = run(["systemctl", "show", properties, "--", name])
    if rc != 0:
        return "systemctl could not read it: %s" % (err.strip() or out.strip() or "rc %d" % rc)
    show = parse_systemd_show(out)
    if show.get("LoadState") in {"not-found", ""} or "LoadState" not in show:
        return "systemd has no unit %s" % name
    restarts = show.get("NRestarts", "")
    return {"manager": "systemd", "running": show.get("ActiveState") == "active",
            "state": "%s/%s" % (show.get("ActiveState", "?"), show.get("SubState", "?")),
            "restarts": int(restarts) if restarts.isdigit() else None,
            "marker": show.get("MainPID") if show.get("MainPID") not in {None, "0"} else None,
            "health": None}


def supervisor_socket(config: str) -> str | None:
    """The unix socket supervisorctl would use, from the config (None: not a unix socket)."""
    # supervisord's own format: ";" after whitespace starts a comment (Debian's default
    # config has one right after the serverurl)
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";",))
    try:
        parser.read(config, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    here = os.path.dirname(os.path.abspath(config))
    url = parser.get("supervisorctl", "serverurl", fallback="").strip()
    if url and not url.startswith("unix://"):
        return None
    path = url[len("unix://"):] if url else parser.get("unix_http_server", "file",
                                                       fallback="").strip()
    return path.replace("%(here)s", here) or None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self.socket_path, self.timeout = path, timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = _UnixConnection(self.socket_path, self.timeout)
        self._connection = host, connection  # what Transport.close() closes
        return connection


def supervisor_programs_rpc(path: str, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """Every program's state from supervisord's XML-RPC interface, over its unix socket.

    One request for all programs, and no ``supervisorctl`` process (a Python start, about
    0.1 s of CPU, per service per host). Raises OSError or an xmlrpc error when
    supervisord cannot answer this way; the caller then asks supervisorctl.
    """
    with xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                   transport=_UnixTransport(path, timeout)) as proxy:
        infos: Any = proxy.supervisor.getAllProcessInfo()
    if not isinstance(infos, list):
        raise xmlrpc.client.Error()
    found: dict[str, dict[str, Any]] = {}
    for info in infos:
        if not isinstance(info, dict):
            raise xmlrpc.client.Error()
        name, group = str(info.get("name", "")), str(info.get("group", ""))
        pid = info.get("pid") or 0
        found[name if group in {"", name} else "%s:%s" % (group, name)] = {
            "state": str(info.get("statename", "UNKNOWN")),
            "pid": str(pid) if pid else None, "detail": str(info.get("description", ""))}
    return found


def supervisor_programs(config: str, run: Run) -> dict[str, dict[str, Any]] | str:
    """Every supervisord program by name, or why supervisord could not say."""
    path = supervisor_socket(config)
    if path and os.path.exists(path):
        try:
            return supervisor_programs_rpc(path)
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            pass  # e.g. a password on the socket: supervisorctl knows it from the config
    try:
        rc, out, err = run(["supervisorctl", "-c", config, "status"])
    except OSError:
        return "supervisord is not installed"
    programs = parse_supervisor_status(out)
    if programs or rc == 0:
        return programs
    text = (out + "\n" + err).strip()
    first = text.splitlines()[0] if text else "rc %d" % rc
    return "supervisord is not running (%s)" % first[:200]


def _supervisord(name: str, run: Run, config: str,
                 cache: dict[str, dict[str, dict[str, Any]] | str]) -> dict[str, Any] | str:
    if not os.path.exists(config):
        return "supervisord is not set up (no %s)" % config
    if config not in cache:  # one reading of all programs serves every declared one
        cache[config] = supervisor_programs(config, run)
    programs = cache[config]
    if isinstance(programs, str):
        return programs
    if name not in programs:
        return "supervisord has no program %s" % name
    program = programs[name]
    return {"manager": "supervisord", "running": program["state"] == "RUNNING",
            "state": program["state"], "restarts": None, "marker": program["pid"],
            "health": None}


def _docker(name: str, run: Run) -> dict[str, Any] | str:
    try:
        rc, out, err = run(["docker", "inspect", "--type", "container", "--format",
                            "{{json .State}}|{{.RestartCount}}", "--", name])
    except OSError:
        return "Docker is not installed"
    if rc != 0:
        text = (err.strip() or out.strip())
        if "No such" in text:
            return "Docker has no container %s" % name
        return "Docker is not reachable (%s)" % text.splitlines()[0][:200] if text else \
            "Docker is not reachable"
    state_text, _, count = out.strip().rpartition("|")
    state = json.loads(state_text)
    health = (state.get("Health") or {}).get("Status")
    return {"manager": "docker", "running": state.get("Status") == "running"
            and not state.get("Restarting"),
            "state": state.get("Status", "?"), "restarts": int(count) if count.isdigit() else None,
            "marker": str(state.get("StartedAt") or "") or None, "health": health}


def read_service(declared: dict[str, Any], run: Run, has_systemd: bool,
                 cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """One declared service, from the manager it names (or the first that knows it).

    ``cache`` is shared by the services of one reading: supervisord is asked once.
    """
    cache = {} if cache is None else cache
    name = str(declared.get("name", ""))
    wanted = str(declared.get("manager") or "auto")
    base: dict[str, Any] = {"name": name, "known": False, "manager": None, "running": False,
                            "state": None, "restarts": None, "marker": None, "health": None}
    if not NAME.match(name):
        return dict(base, detail="%r is not a plain service name" % name)
    if wanted not in {"auto", "systemd", "supervisord", "docker"}:
        return dict(base, detail="unknown service manager %r" % wanted)
    why: list[str] = []
    for manager in ("systemd", "supervisord", "docker"):
        if wanted not in {"auto", manager}:
            continue
        if manager == "systemd" and not has_systemd:
            why.append("systemd is not running")
            continue
        if manager == "systemd":
            got = _systemd(name, run)
        elif manager == "supervisord":
            config = str(declared.get("supervisor_config") or SUPERVISOR_CONFIG)
            got = _supervisord(name, run, config, cache)
        else:
            got = _docker(name, run)
        if isinstance(got, dict):
            return dict(base, known=True, detail="", **got)
        why.append(got)
    return dict(base, detail="no service manager on this host knows %s: %s"
                % (name, "; ".join(why)))


# -- reverse-proxy access logs (Caddy's JSON lines) -----------------------------------------

def _timestamp(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        match = re.match(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$",
                         value)
        if match:
            year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
            stamp = timegm((year, month, day, hour, minute, second, 0, 0, 0)) \
                + float(match.group(7) or 0)
            zone = match.group(8)
            if zone and zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                digits = zone[1:].replace(":", "")
                stamp -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
            return float(stamp)
    return None


def tail_lines(path: str, visit: Callable[[bytes], bool], max_bytes: int) -> bool:
    """Hand ``visit`` the lines of ``path`` newest first, until it returns True.

    Returns whether the read reached that point (or the file's start) rather than the
    byte budget, so a huge log costs at most ``max_bytes`` and nothing is kept in memory.
    """
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        carry = b""
        read = 0
        while position > 0:
            size = min(65536, position)
            position -= size
            handle.seek(position)
            parts = (handle.read(size) + carry).split(b"\n")
            carry = parts.pop(0) if position > 0 else b""  # the start of a line, or nothing
            read += size
            for line in reversed(parts):
                if line.strip() and visit(line):
                    return True
            if read >= max_bytes:
                return False
    return True


def read_access_log(declared: dict[str, Any], now: float) -> dict[str, Any]:
    """Requests and server errors in the last ``window_seconds`` of a JSON access log."""
    path = str(declared.get("path", ""))
    window = 60.0 * float(declared.get("window_minutes") or 5)
    max_bytes = int(declared.get("max_bytes") or 64 * 1024 * 1024)
    result: dict[str, Any] = {"path": path, "window_seconds": window, "requests": 0,
                              "server_errors": 0, "bad_gateway": 0, "complete": True,
                              "error": None}
    since = now - window
    entries: list[dict[str, Any]] = []

    def visit(line: bytes) -> bool:  # True once the lines are older than the window
        try:
            doc = json.loads(line)
        except ValueError:
            return False
        stamp = _timestamp(doc.get("ts")) if isinstance(doc, dict) else None
        if stamp is None:
            return False
        if stamp < since:
            return True
        entries.append(doc)
        return False

    if not path.startswith("/"):
        return dict(result, error="the log path must be absolute")
    try:
        result["complete"] = tail_lines(path, visit, max_bytes)
    except OSError as exc:
        return dict(result, error="cannot read %s: %s" % (path, exc.strerror or exc))
    for doc in entries:
        status = doc.get("status")
        if not isinstance(status, int) or isinstance(status, bool):
            continue
        result["requests"] += 1
        if status >= 500:
            result["server_errors"] += 1
        if status == 502:
            result["bad_gateway"] += 1
    return result


# -- heartbeats: the wrapper's state file, or a file a job touches ---------------------------

def read_heartbeat(declared: dict[str, Any], directory: str) -> dict[str, Any]:
    name = str(declared.get("name", ""))
    result: dict[str, Any] = {"name": name, "exists": False, "error": None}
    if not NAME.match(name):
        return dict(result, error="%r is not a plain job name" % name)
    touched = declared.get("file")
    if touched:
        try:
            return dict(result, exists=True, mode="file",
                        last_success=os.stat(str(touched)).st_mtime)
        except FileNotFoundError:
            return dict(result, mode="file")
        except OSError as exc:
            return dict(result, mode="file", error="cannot read %s: %s" % (touched, exc.strerror))
    path = os.path.join(directory, name + ".json")
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return dict(result, mode="wrapper")
    except (OSError, ValueError) as exc:
        return dict(result, mode="wrapper", error="cannot read %s: %s" % (path, exc))
    if not isinstance(doc, dict):
        return dict(result, mode="wrapper", error="%s is not a heartbeat record" % path)
    keep = ("started", "finished", "exit_status", "duration_seconds", "starts", "retries",
            "last_success")
    return dict(result, exists=True, mode="wrapper", **{k: doc.get(k) for k in keep})


# -- TLS certificates ------------------------------------------------------------------------

def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``offset``."""
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def _asn1_time(tag: int, raw: bytes) -> float:
    text = raw.decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime: YYMMDDHHMMSS
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif tag != 0x18:  # GeneralizedTime: YYYYMMDDHHMMSS
        raise ValueError("not a time")
    parts = [int(text[i:i + 2]) for i in range(4, 14, 2)]
    return float(timegm((int(text[:4]), *parts, 0, 0, 0)))


def der_not_after(der: bytes) -> float:
    """The notAfter of a DER certificate (RFC 5280 tbsCertificate.validity), as epoch."""
    _tag, cert, _end = _tlv(der, 0)
    _tag, position, tbs_end = _tlv(der, cert)
    # tbsCertificate's elements: [version], serial, signature, issuer, validity
    fields: list[tuple[int, int]] = []
    while position < tbs_end and len(fields) < 5:
        tag, start, end = _tlv(der, position)
        if tag != 0xA0:
            fields.append((tag, start))
        position = end
    if len(fields) < 4 or fields[3][0] != 0x30:
        raise ValueError("no validity in the certificate")
    _tag, _start, before_end = _tlv(der, fields[3][1])  # notBefore, then notAfter
    tag, start, end = _tlv(der, before_end)
    return _asn1_time(tag, der[start:end])


def read_certificate(declared: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """The certificate an endpoint presents (read, not trusted: an expired one is news too)."""
    host = str(declared.get("host", ""))
    port = int(declared.get("port") or 443)
    server_name = str(declared.get("server_name") or host)
    result: dict[str, Any] = {"endpoint": "%s:%d" % (host, port), "server_name": server_name,
                              "not_after": None, "error": None}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return dict(result, error="cannot read the certificate: %s" % exc)
    if not der:
        return dict(result, error="the endpoint presented no certificate")
    try:
        return dict(result, not_after=der_not_after(der))
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        return dict(result, error="cannot parse the certificate: %s" % exc)


# -- backups: the backup role's manifests ----------------------------------------------------

def _verified(directory: str, manifest_name: str) -> tuple[bool, str]:
    path = os.path.join(directory, manifest_name)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        archive = os.path.join(directory, os.path.basename(str(manifest["archive"])))
        size = os.stat(archive).st_size
        with open(archive + ".sha256", encoding="utf-8") as handle:
            recorded = handle.read().split()[0]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return False, "unreadable: %s" % exc
    if int(manifest.get("bytes", -1)) != size:
        return False, "the archive's size differs from its manifest"
    if recorded != manifest.get("sha256"):
        return False, "the checksum file differs from the manifest"
    return True, ""


def read_backups(declared: dict[str, Any]) -> dict[str, Any]:
    """The newest backup whose archive, checksum file and manifest agree."""
    directory = str(declared.get("dir", ""))
    result: dict[str, Any] = {"dir": directory, "count": 0, "newest_verified": None,
                              "newest_verified_at": None, "unverified_newer": [], "error": None}
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".manifest.json")]
    except OSError as exc:
        return dict(result, error="cannot list %s: %s" % (directory, exc.strerror or exc))
    dated = []
    for name in names:
        try:
            dated.append((os.stat(os.path.join(directory, name)).st_mtime, name))
        except OSError:
            continue
    result["count"] = len(dated)
    for mtime, name in sorted(dated, reverse=True):
        ok, why = _verified(directory, name)
        if ok:
            return dict(result, newest_verified=name, newest_verified_at=mtime)
        result["unverified_newer"].append("%s: %s" % (name, why))
    return result


def now() -> float:
    return time.time()
