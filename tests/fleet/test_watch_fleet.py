"""``autoops watch --env lab`` against the lab's real stack: every failure class, induced for real.

Each incident breaks something on ONE lab host (its app stopped with 502s through Caddy,
a crash loop, cron stopped, a certificate close to its end, a full disk, the host gone),
runs watch until it fires, checks that the Telegram-compatible receiver and the webhook
receiver each heard exactly one problem for that host and check with its severity,
undoes it, and checks for exactly one recovery. Different hosts carry different classes
at once, which keeps the whole file to a few minutes; the lab inventory fires after two
failing readings. The last test puts people and a bad network in the loop: a flap, a
receiver that is down and then rate-limits, an acknowledgement, and a fresh autoops
process between firing and recovery.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from autoops.exits import ExitStatus
from autoops.lab import image, manager
from autoops.notify.webhook import sign
from tests.conftest import run_cli, run_script
from tests.fleet.conftest import Lab, lab_secrets
from tests.integration.conftest import wait_for
from tests.integration.receivers import Receiver, serving

pytestmark = pytest.mark.fleet
TOKEN = "424242:lab-watch-token"
HOOK_SIGNING = "lab-hook-signing-key"
ITEM = re.compile(r"<b>\W*(?P<tag>[A-Z]+)</b> (?P<host>[^:]+): (?P<check>\S+) ?(?P<subject>.*?)"
                  r"(?P<extra> \((?:still firing|flapping)\))?$")

Key = tuple[str, str, str]
"""(host, check, subject) of a finding, as the messages name it."""


@dataclass(frozen=True)
class Heard:
    """One item of one message the receiver got."""

    tag: str  # CRITICAL, WARNING, INFO or RESOLVED
    key: Key
    extra: str
    text: str


def heard(receiver: Receiver, since: int = 0) -> list[Heard]:
    items: list[Heard] = []
    for path, _headers, body in receiver.posts[since:]:
        if not path.endswith("/sendMessage"):
            continue
        for block in json.loads(body)["text"].split("\n\n")[1:]:  # after the heading
            first = html.unescape(block.split("\n", 1)[0])
            match = ITEM.match(first)
            assert match, block
            items.append(Heard(match["tag"], (match["host"], match["check"], match["subject"]),
                               match["extra"] or "", block))
    return items


def hooked(hook: Receiver, since: int = 0) -> list[tuple[str, Key, str]]:
    """(status, key, severity) of each alert the webhook receiver got, after a signature check."""
    alerts = []
    for _path, headers, body in hook.posts[since:]:
        assert headers["X-Autoops-Signature"] == sign(HOOK_SIGNING, body)
        for alert in json.loads(body)["alerts"]:
            labels = alert["labels"]
            alerts.append((alert["status"], (labels["host"], labels["alertname"],
                                             labels["subject"]), labels["severity"]))
    return alerts


def serve() -> Iterator[Receiver]:
    with serving() as server:
        yield server


receiver = pytest.fixture(scope="module", name="receiver")(serve)
hook = pytest.fixture(scope="module", name="hook")(serve)


@pytest.fixture(scope="module")
def watched(lab: Lab, receiver: Receiver, hook: Receiver) -> Lab:
    """The lab, with SOPS secrets telling watch where its Telegram and webhook are."""
    lab_secrets(lab)
    for name, value in (("notify_telegram_token", TOKEN), ("notify_telegram_chat_id", "77"),
                        ("notify_telegram_base_url", receiver.url),
                        ("notify_webhook_url", f"{hook.url}/hook"),
                        ("notify_webhook_secret", HOOK_SIGNING)):
        done = run_cli(lab.settings, "secrets", "set", "--env", "lab", name, stdin=value)
        assert done.status == ExitStatus.OK, done.err
    return lab


def watch(lab: Lab) -> dict[str, Any]:
    result = run_cli(lab.settings, "watch", "--env", "lab", "--json")
    assert result.status in (ExitStatus.OK, ExitStatus.PLAYBOOK_FAILED), result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def ports(lab: Lab, host: str) -> dict[str, int]:
    record = manager.load_record(lab.paths)
    assert record is not None
    (ssh,) = [h["port"] for h in record["hosts"] if h["name"] == host]
    return {"ssh": ssh, **image.host_ports(ssh)}


def get(port: int, count: int) -> list[int]:
    """``count`` GETs through a host's Caddy (a new connection each): their statuses."""
    statuses = []
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            conn.close()
    return statuses


def supervised(lab: Lab, host: str, *argv: str) -> str:
    return lab.docker("exec", f"autoops-lab-{host}", "supervisorctl", *argv, check=False)


def watch_until(lab: Lab, receiver: Receiver, since: int, done: Callable[[list[Heard]], bool], *,
                what: str, limit: float) -> list[Heard]:
    """Run watch until what the receiver heard since ``since`` satisfies ``done``."""
    deadline = time.monotonic() + limit
    while True:
        doc = watch(lab)
        said = heard(receiver, since)
        if done(said):
            return said
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit:.0f}s; heard {said}; last notices "
                        f"{doc['notices']}; firing {doc['firing']}")
        time.sleep(2)


def incident(lab: Lab, ears: tuple[Receiver, Receiver], expected: Mapping[Key, str],
             induce: Callable[[], None], undo: Callable[[], None], *,
             tolerated: frozenset[Key] = frozenset(), recover_within: float = 120) -> None:
    """Induce, see each expected finding fire once (and nothing else), undo, see one recovery.

    ``ears`` are the Telegram-compatible receiver and the webhook receiver: both must
    hear the same problems and recoveries, once each.
    """
    receiver, hook = ears
    since, hook_since = len(receiver.posts), len(hook.posts)
    try:
        induce()
        said = watch_until(lab, receiver, since, lambda s: {h.key for h in s} >= set(expected),
                           what="firing", limit=150)
    except BaseException:
        undo()
        raise
    problems = [h for h in said if h.tag != "RESOLVED"]
    for key, severity in expected.items():
        assert [h.tag for h in problems if h.key == key] == [severity], (key, said)
    unexpected = [h for h in problems if h.key not in expected and h.key not in tolerated]
    assert unexpected == [], "only the induced findings fire"
    assert all(TOKEN not in h.text for h in said)
    fired = [(key, severity) for status, key, severity in hooked(hook, hook_since)
             if status == "firing" and key in expected]
    assert sorted(fired) == sorted((k, s.lower()) for k, s in expected.items()), fired
    undo()
    mark, hook_mark = len(receiver.posts), len(hook.posts)
    healed = watch_until(lab, receiver, mark, lambda s: {h.key for h in s if h.tag == "RESOLVED"}
                         >= set(expected), what="recovery", limit=recover_within)
    for key in expected:
        assert [h.tag for h in healed if h.key == key] == ["RESOLVED"], (key, healed)
    assert [h for h in healed if h.tag != "RESOLVED" and h.key not in tolerated] == []
    wait_for(lambda: sorted(k for st, k, _s in hooked(hook, hook_mark) if st == "resolved"
                            and k in expected) == sorted(expected), 10, "webhook recoveries")
    doc = watch(lab)
    assert [a for a in doc["firing"] if (a["host"], a["check"], a["subject"]) in expected] == []


def test_the_lab_stack_is_healthy_and_fully_declared(watched: Lab, receiver: Receiver) -> None:
    since = len(receiver.posts)
    for _ in range(2):  # fail_after is 2: anything wrong at rest would fire now
        doc = watch(watched)
    assert doc["firing"] == [], doc["firing"]
    assert heard(receiver, since) == []
    listed = json.loads(run_cli(watched.settings, "alerts", "list", "--all", "--json").out)
    subjects = {(a["check"], a["subject"]) for a in listed["alerts"] if a["host"] == "web1"}
    web1 = ports(watched, "web1")
    assert {("service", "autoops-demo"), ("service", "caddy"), ("service", "cron"),
            ("service", "autoops-crashloop"), ("restarts", "autoops-crashloop"),
            ("proxy", image.ACCESS_LOG), ("heartbeat", "lab-tick"),
            ("tls", f"127.0.0.1:{web1['https']}")} <= subjects
    assert get(web1["http"], 1) == [200]
    page = watched.on_host("web1", "python3", "-c", "import urllib.request as u; print(u.urlopen("
                           f"'http://127.0.0.1:{web1['app']}/').read().decode())")
    assert "autoops-demo on web1" in page


def test_app_down_restart_loop_and_missed_heartbeat(watched: Lab, receiver: Receiver,
                                                    hook: Receiver) -> None:
    """web1's app stops (service down, then 502s through Caddy); web2 crash-loops; db1's cron stops."""
    web1 = ports(watched, "web1")

    def induce() -> None:
        supervised(watched, "web1", "stop", "autoops-demo")
        assert get(web1["http"], 10) == [502] * 10
        watched.on_host("web2", "touch", image.CRASH_FLAG)
        supervised(watched, "db1", "stop", "cron")
        watched.on_host("db1", "rm", "-f", image.HEARTBEAT_FILE)  # as if cron was gone minutes

    def undo() -> None:
        supervised(watched, "web1", "start", "autoops-demo")
        wait_for(lambda: get(web1["http"], 1) == [200], 30, "web1's app behind Caddy")
        assert set(get(web1["http"], 300)) == {200}  # 10 of 310 is under 5%: no spike now
        watched.on_host("web2", "rm", "-f", image.CRASH_FLAG)
        supervised(watched, "db1", "start", "cron")  # its next minute touches the file

    incident(watched, (receiver, hook), {
        ("web1", "service", "autoops-demo"): "CRITICAL",
        ("web1", "proxy", image.ACCESS_LOG): "CRITICAL",
        ("web2", "restarts", "autoops-crashloop"): "CRITICAL",
        ("db1", "service", "cron"): "CRITICAL",
        ("db1", "heartbeat", "lab-tick"): "CRITICAL",
    }, induce, undo,
        # a reading may catch the loop between two runs: then it is down as well
        tolerated=frozenset({("web2", "service", "autoops-crashloop")}),
        recover_within=180)  # the loop's window is a minute; cron ticks once a minute


def test_expiring_certificate_full_disk_and_unreachable_host(watched: Lab, receiver: Receiver,
                                                             hook: Receiver) -> None:
    """web1's Caddy certificate is near its end, web2's disk is "full", db1 is gone."""
    host_vars = watched.paths.inventory_dir / "host_vars"
    https = ports(watched, "web1")["https"]

    def induce() -> None:
        host_vars.mkdir(exist_ok=True)
        # Caddy's internal CA issues 12-hour certificates: a day's notice makes it critical
        (host_vars / "web1.yml").write_text(
            "---\nwatch_tls_endpoints:\n  - {host: 127.0.0.1, port: \"{{ lab_https_port }}\", "
            "warning_days: 1, critical_days: 1}\n")
        (host_vars / "web2.yml").write_text("---\nwatch_disk_warning_percent: 0\n")
        manager.stop_host(watched.paths, "db1")

    def undo() -> None:
        for name in ("web1.yml", "web2.yml"):
            (host_vars / name).unlink(missing_ok=True)
        watched.docker("start", "autoops-lab-db1")
        wait_for(lambda: "RUNNING" in supervised(watched, "db1", "status", "sshd"), 60,
                 "db1's sshd")

    incident(watched, (receiver, hook), {
        ("web1", "tls", f"127.0.0.1:{https}"): "CRITICAL",
        ("web2", "disk", "/"): "WARNING",
        ("db1", "reachable", ""): "CRITICAL",
    }, induce, undo)
    said = heard(receiver)
    (tls,) = [h.text for h in said if h.key[1] == "tls" and h.tag == "CRITICAL"]
    assert "the certificate expires" in tls
    assert re.search(r"in 0\.\d days", tls), tls


def alert_id(lab: Lab, key: Key) -> str:
    listed = json.loads(run_cli(lab.settings, "alerts", "list", "--all", "--json").out)
    (found,) = [a["id"] for a in listed["alerts"] if (a["host"], a["check"], a["subject"]) == key]
    return str(found)


def test_a_flap_an_outage_an_ack_and_a_restart_lose_nothing(watched: Lab, receiver: Receiver,
                                                            hook: Receiver) -> None:
    """A firing message waits out a dead receiver and a 429 and arrives once; one flapping
    notice; repeats until acknowledged, then none; the recovery seen by new processes."""
    down: Key = ("web2", "service", "caddy")
    flap: Key = ("db1", "heartbeat", "lab-tick")
    tls: Key = ("web2", "tls", f"127.0.0.1:{ports(watched, 'web2')['https']}")  # Caddy's too
    host_vars = watched.paths.inventory_dir / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "web2.yml").write_text("---\nwatch_repeat_every: 1m\n")
    since = len(receiver.posts)
    supervised(watched, "web2", "stop", "caddy")
    try:
        # the receiver is down for the firing message, then asks to wait a second
        receiver.script = [(500, {"ok": False, "description": "down for maintenance"}),
                           (429, {"ok": False, "error_code": 429,
                                  "parameters": {"retry_after": 1}})]
        docs = [watch(watched) for _ in range(2)]  # pending, then firing: not delivered
        assert docs[1]["waiting"], docs[1]
        assert heard(receiver, since) == []
        watch(watched)  # the outbox's turn: a 429, a second's wait, delivered
        fired_at = time.monotonic()
        assert receiver.script == []
        # Meanwhile db1's heartbeat file is stale, then fresh, at every reading: it changes
        # its mind each time, never twice in a row, so it never fires; it flaps.
        for n in range(12):  # cron's own touch may spoil a stale one: 12 for 8 changes
            when = "10 minutes ago" if n % 2 == 0 else "now"
            watched.on_host("db1", "touch", "-d", when, image.HEARTBEAT_FILE)
            watch(watched)
        watched.on_host("db1", "touch", image.HEARTBEAT_FILE)
        time.sleep(max(0.0, 61 - (time.monotonic() - fired_at)))
        watch(watched)  # a minute on, still firing is said again
        said = heard(receiver, since)
        assert [(h.tag, h.extra) for h in said if h.key == down] == [
            ("CRITICAL", ""), ("CRITICAL", " (still firing)")], said
        assert [h.extra for h in said if h.key == flap] == [" (flapping)"], said
        assert [h for h in said if h.key not in {down, flap, tls}] == [], said
        acked = run_cli(watched.settings, "alerts", "ack", alert_id(watched, down),
                        "--reason", "caddy stopped on purpose by the fleet test")
        assert acked.status == ExitStatus.OK, acked.err
        mark = len(receiver.posts)
        time.sleep(61)
        watch(watched)
        assert [h for h in heard(receiver, mark) if h.key == down] == [], "acked: no repeats"
    finally:
        receiver.script = []
        supervised(watched, "web2", "start", "caddy")
        (host_vars / "web2.yml").unlink()
    # autoops "restarted" between firing and recovery: each run below is a new process
    mark = len(receiver.posts)
    for _ in range(2):  # recover_after is 2
        done = run_script(watched.settings, "watch", "--env", "lab", "--json")
        assert done.returncode in (ExitStatus.OK, ExitStatus.PLAYBOOK_FAILED), done.stderr
    healed = [h for h in heard(receiver, mark) if h.key == down]
    assert [h.tag for h in healed] == ["RESOLVED"], healed
    audit = json.loads(run_cli(watched.settings, "audit", "query", "--type", "alert.acked",
                               "--json").out)
    assert len(audit["records"]) == 1, audit
    assert [a for a in hooked(hook) if a[1] == down] == [
        ("firing", down, "critical"), ("firing", down, "critical"),
        ("resolved", down, "critical")], "the webhook: first, one repeat, the recovery"


def heal(lab: Lab) -> dict[str, Any]:
    done = run_cli(lab.settings, "heal", "--env", "lab", "--json")
    assert done.status in (ExitStatus.OK, ExitStatus.PLAYBOOK_FAILED), done.err
    doc: dict[str, Any] = json.loads(done.out)
    return doc


def test_a_killed_app_is_healed_and_a_fix_that_does_not_hold_is_escalated(
        watched: Lab, receiver: Receiver) -> None:
    """web1's app stops: heal restarts it over SSH through the gate, and watch resolves it.
    It stops again right after the next fix: the fix failed, the breaker opens, one message."""
    down: Key = ("web1", "service", "autoops-demo")
    web1 = ports(watched, "web1")
    book = watched.settings.project_dir / "runbooks" / "service-down.yml"
    shipped = book.read_text()
    since = len(receiver.posts)
    supervised(watched, "web1", "stop", "autoops-demo")
    try:
        watch_until(watched, receiver, since, lambda s: down in {h.key for h in s},
                    what="the app down", limit=60)
        (attempt,) = heal(watched)["attempts"]
        assert (attempt["runbook"], attempt["outcome"]) == ("service-down", "verifying"), attempt
        assert "RUNNING" in supervised(watched, "web1", "status", "autoops-demo")
        assert get(web1["http"], 1) == [200]
        mark = len(receiver.posts)
        watch_until(watched, receiver, mark, lambda s: any(
            h.key == down and h.tag == "RESOLVED" for h in s), what="recovery", limit=60)
        (held,) = heal(watched)["settled"]
        assert (held["attempt"], held["outcome"]) == (attempt["attempt"], "held")

        # two heals an hour (the one that held counts), and a fix must hold within a second
        book.write_text(shipped.replace("attempts: 3", "attempts: 2")
                        + "verify_within: 1s\n")
        supervised(watched, "web1", "stop", "autoops-demo")
        mark = len(receiver.posts)
        watch_until(watched, receiver, mark, lambda s: down in {h.key for h in s},
                    what="down again", limit=60)
        assert [a["outcome"] for a in heal(watched)["attempts"]] == ["verifying"]
        supervised(watched, "web1", "stop", "autoops-demo")  # the fix does not hold
        time.sleep(1.5)  # past verify_within
        doc = heal(watched)
        assert [s["outcome"] for s in doc["settled"]] == ["failed"]
        assert [a["outcome"] for a in doc["attempts"]] == ["escalated"]
        assert heal(watched)["attempts"] == [], "told once; not restarted again"
        assert "STOPPED" in supervised(watched, "web1", "status", "autoops-demo")
        told = [t for t in receiver.texts()[mark:] if "need(s) a person" in t]
        assert len(told) == 1, told
        assert "breaker open: 2 heals of web1 within 1h" in told[0]
        assert "did not hold" in told[0]
    finally:
        book.write_text(shipped)
        supervised(watched, "web1", "start", "autoops-demo")
    mark = len(receiver.posts)
    watch_until(watched, receiver, mark, lambda s: any(
        h.key == down and h.tag == "RESOLVED" for h in s), what="recovery", limit=60)
