"""Telegram through the Bot API: ``sendMessage`` in HTML, split at 4096 characters.

The base URL is configurable (a self-hosted Bot API server); the token and chat id come
from the environment's SOPS secrets. The token is part of the URL, so it never appears
in an error message: errors name the method, not the address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from autoops.notify.messages import Message, split, telegram_html
from autoops.notify.transport import DeliveryError, post_json

LIMIT = 4096


@dataclass
class Telegram:
    token: str = field(repr=False)
    chat_id: str
    base_url: str = "https://api.telegram.org"
    timeout: float = 10.0
    name: str = "telegram"

    def parts(self, message: Message) -> list[str]:
        return split(telegram_html(message), LIMIT)

    def send_part(self, message: Message, index: int) -> None:
        """Send part ``index`` of ``message``; raise DeliveryError (or RetryAfterError) if refused."""
        body = json.dumps({"chat_id": self.chat_id, "text": self.parts(message)[index],
                           "parse_mode": "HTML", "disable_web_page_preview": True}).encode()
        url = f"{self.base_url.rstrip('/')}/bot{self.token}/sendMessage"
        answer = post_json(url, body, {}, self.timeout)  # its errors never carry the URL
        if answer.get("ok") is not True:
            raise DeliveryError(f"sendMessage refused: {str(answer.get('description'))[:200]}")

