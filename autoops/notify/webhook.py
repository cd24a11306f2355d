"""A generic webhook: Alertmanager's webhook payload (version 4), signed with HMAC-SHA256.

Receivers that already take Alertmanager's webhook take this one; the signature header
``X-Autoops-Signature: sha256=HEX`` (over the exact body) proves it came from autoops,
and ``Idempotency-Key`` lets a receiver drop a redelivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from autoops.notify.messages import Message
from autoops.notify.transport import post_json
from autoops.watch.findings import Notice


@dataclass
class Webhook:
    url: str
    secret: str = field(repr=False)
    timeout: float = 10.0
    name: str = "webhook"

    def parts(self, message: Message) -> list[bytes]:
        return [json.dumps(payload(message), sort_keys=True).encode()]

    def send_part(self, message: Message, index: int) -> None:
        body = self.parts(message)[index]
        post_json(self.url, body, {"X-Autoops-Signature": sign(self.secret, body),
                                   "Idempotency-Key": message.key}, self.timeout)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(message: Message) -> dict[str, Any]:
    """Alertmanager's webhook shape; one payload per message (a group)."""
    resolved = message.kind == "recoveries"
    alerts = [{
        "status": "resolved" if item.notice is Notice.RESOLVED else "firing",
        "labels": {"alertname": item.check, "env": item.env, "host": item.host,
                   "subject": item.subject, "severity": item.severity.value},
        "annotations": {"summary": item.summary, "notice": item.notice.value},
        "startsAt": item.since.isoformat() if item.since else message.at.isoformat(),
        "endsAt": message.at.isoformat() if item.notice is Notice.RESOLVED
        else "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": item.alert_id} for item in message.items]
    return {"version": "4", "groupKey": f"{{}}:{{env=\"{message.env}\"}}", "truncatedAlerts": 0,
            "status": "resolved" if resolved else "firing", "receiver": "autoops",
            "groupLabels": {"env": message.env}, "commonLabels": {"env": message.env},
            "commonAnnotations": {}, "externalURL": "", "alerts": alerts}
