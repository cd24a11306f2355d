"""Signed pre-authorisation grants: token format, signatures, expiry and scope.

A grant is a JSON document signed with an environment's Ed25519 key. Its token is
``aog1.<payload>.<signature>`` (base64url, no padding) over the canonical JSON, so one
grant has exactly one token. Nothing here touches state.db or reads the clock: the
store (``grantstore``) counts uses and revocations, and ``now`` is passed in.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from autoops.common import reasons
from autoops.common.canonical import canonical_json
from autoops.common.durations import format_duration
from autoops.common.names import PARAM_NAME
from autoops.core.risk import Risk
from autoops.errors import (
    GrantExpiredError,
    GrantForgedError,
    GrantKeyError,
    GrantMalformedError,
    GrantScopeError,
    GrantTtlError,
)

if TYPE_CHECKING:  # cryptography is loaded where a key is used: most commands use none
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

TOKEN_PREFIX = "aog1"  # noqa: S105 - a format tag, not a secret
GRANT_ID = r"^g-[0-9a-f]{12}$"
MAX_TOKEN = 8192
CLOCK_SKEW = timedelta(minutes=5)
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+$")
_TIME = "%Y-%m-%dT%H:%M:%SZ"
_FIELDS = {"v", "id", "env", "actions", "max_risk", "hosts", "params", "issued", "expires",
           "uses", "break_glass", "reason", "issuer", "key_id"}



@dataclass(frozen=True)
class Grant:
    id: str
    env: str
    actions: tuple[str, ...]
    max_risk: Risk
    hosts: str | None  # comma-separated host globs; None: any host of the environment
    params: Mapping[str, tuple[str, ...]]  # constrained parameters -> allowed values
    issued: datetime
    expires: datetime
    uses: int | None  # None: unlimited until it expires
    break_glass: bool
    reason: str
    issuer: str
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        """The signed payload (JSON-able)."""
        return {"v": 1, "id": self.id, "env": self.env, "actions": list(self.actions),
                "max_risk": self.max_risk.name, "hosts": self.hosts,
                "params": {k: list(v) for k, v in sorted(self.params.items())},
                "issued": self.issued.astimezone(UTC).strftime(_TIME),
                "expires": self.expires.astimezone(UTC).strftime(_TIME), "uses": self.uses,
                "break_glass": self.break_glass, "reason": self.reason, "issuer": self.issuer,
                "key_id": self.key_id}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Grant:
        """Strictly rebuild a grant; anything unexpected is GrantMalformedError."""
        if not isinstance(doc, Mapping) or set(doc) != _FIELDS or doc["v"] != 1:
            raise GrantMalformedError("the grant payload does not have the expected fields")
        try:
            grant = cls(
                id=_text(doc["id"], "id"), env=_text(doc["env"], "env"),
                actions=tuple(_text(a, "actions") for a in _list(doc["actions"], "actions")),
                max_risk=Risk[_text(doc["max_risk"], "max_risk")],
                hosts=None if doc["hosts"] is None else _text(doc["hosts"], "hosts"),
                params={_text(k, "params"): tuple(_text(v, "params")
                                                  for v in _list(vals, "params"))
                        for k, vals in _mapping(doc["params"]).items()},
                issued=_time(doc["issued"]), expires=_time(doc["expires"]),
                uses=_uses(doc["uses"]), break_glass=_flag(doc["break_glass"]),
                reason=_text(doc["reason"], "reason"), issuer=_text(doc["issuer"], "issuer"),
                key_id=_text(doc["key_id"], "key_id"))
        except KeyError as exc:
            raise GrantMalformedError(f"the grant payload has a bad value: {exc}") from None
        _validate(grant)
        return grant


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise GrantMalformedError(f"grant {what}: expected a non-empty string")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise GrantMalformedError(f"grant {what}: expected a list")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GrantMalformedError("grant params: expected a mapping")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise GrantMalformedError("grant break_glass: expected true or false")
    return value


def _uses(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GrantMalformedError("grant uses: expected a whole number of at least 1, or null")
    return value


def _time(value: Any) -> datetime:
    try:
        return datetime.strptime(_text(value, "time"), _TIME).replace(tzinfo=UTC)
    except ValueError:
        raise GrantMalformedError(f"grant time {value!r} is not YYYY-MM-DDTHH:MM:SSZ") from None


def _validate(grant: Grant) -> None:
    if not re.fullmatch(GRANT_ID, grant.id):
        raise GrantMalformedError(f"grant id {grant.id!r} is not g- and 12 hex digits")
    if not grant.actions or list(grant.actions) != sorted(set(grant.actions)):
        raise GrantMalformedError("grant actions must be a non-empty, sorted list without repeats")
    if grant.expires <= grant.issued:
        raise GrantMalformedError("grant expires before it is issued")
    if not reasons.is_one_line(grant.reason):
        raise GrantMalformedError(f"grant reason must be one line of at most {reasons.REASON_MAX} "
                                  "characters")
    host_globs(grant.hosts)
    for key, values in grant.params.items():
        if not re.fullmatch(PARAM_NAME, key) or not values or len(set(values)) != len(values):
            raise GrantMalformedError(f"grant param constraint {key!r} is invalid")


def new_grant(*, env: str, actions: Sequence[str], max_risk: Risk, hosts: str | None,
              params: Mapping[str, tuple[str, ...]], issued: datetime, expires_in: timedelta,
              uses: int | None, break_glass: bool, reason: str, issuer: str, key_id: str,
              ceiling: timedelta) -> Grant:
    """A new grant with a random id; refuses a lifetime above ``ceiling``."""
    if expires_in <= timedelta(0):
        raise GrantMalformedError("--expires-in must be positive")
    if expires_in > ceiling:
        kind = "a break-glass grant" if break_glass else f"a grant up to {max_risk.name}"
        raise GrantTtlError(f"--expires-in {format_duration(expires_in)} is above the "
                            f"{format_duration(ceiling)} ceiling for {kind}")
    start = issued.astimezone(UTC).replace(microsecond=0)
    grant = Grant(id=f"g-{secrets.token_hex(6)}", env=env, actions=tuple(sorted(set(actions))),
                  max_risk=max_risk, hosts=",".join(host_globs(hosts)) or None,
                  params=dict(params), issued=start, expires=start + expires_in, uses=uses,
                  break_glass=break_glass, reason=reason, issuer=issuer, key_id=key_id)
    _validate(grant)
    return grant


# -- keys and signatures --------------------------------------------------------------


def generate_keypair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new Ed25519 key."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    private = Ed25519PrivateKey.generate()
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
            _public_pem(private.public_key()))


def _public_pem(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key(private_pem: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise GrantKeyError(f"not an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise GrantKeyError("the signing key is not an Ed25519 key")
    return key


def public_of(private_pem: bytes) -> bytes:
    return _public_pem(private_key(private_pem).public_key())


def load_public(public_pem: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    try:
        key = serialization.load_pem_public_key(public_pem)
    except (ValueError, TypeError) as exc:
        raise GrantKeyError(f"not an Ed25519 public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise GrantKeyError("the public key is not an Ed25519 key")
    return key


def key_id(public_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    raw = load_public(public_pem).public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise GrantMalformedError("the token is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise GrantMalformedError("the token is not base64url") from None
    if _b64(data) != text:  # unused trailing bits would give one grant many tokens
        raise GrantMalformedError("the token is not canonical base64url")
    return data


def sign(grant: Grant, private_pem: bytes) -> str:
    key = private_key(private_pem)
    if key_id(_public_pem(key.public_key())) != grant.key_id:
        raise GrantKeyError("the signing key is not the one the grant names")
    payload = canonical_json(grant.to_dict())
    return f"{TOKEN_PREFIX}.{_b64(payload)}.{_b64(key.sign(payload))}"


def parse_token(token: str) -> tuple[Grant, bytes, bytes]:
    """(grant, payload bytes, signature) of a token; only GrantMalformedError on junk."""
    text = token.strip() if isinstance(token, str) else ""
    if not text or len(text) > MAX_TOKEN:
        raise GrantMalformedError("not a grant token")
    parts = text.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise GrantMalformedError(f"a grant token has three parts: {TOKEN_PREFIX}.PAYLOAD.SIGNATURE")
    payload, signature = _unb64(parts[1]), _unb64(parts[2])
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise GrantMalformedError("the grant payload is not JSON") from None
    grant = Grant.from_dict(doc)
    if canonical_json(grant.to_dict()) != payload:
        raise GrantMalformedError("the grant payload is not in canonical form")
    return grant, payload, signature


def verify(token: str, public_keys: Mapping[str, bytes]) -> Grant:
    """The grant, if its signature verifies against its environment's public key."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    grant, payload, signature = parse_token(token)
    public_pem = public_keys.get(grant.env)
    if public_pem is None:
        raise GrantKeyError(f"no public grant key for {grant.env} (grant-keys/{grant.env}.pub)")
    if key_id(public_pem) != grant.key_id:
        raise GrantForgedError(f"grant {grant.id} is signed by another key ({grant.key_id}), not "
                               f"{grant.env}'s")
    try:
        load_public(public_pem).verify(signature, payload)
    except InvalidSignature:
        raise GrantForgedError(f"grant {grant.id}: the signature does not verify") from None
    return grant


# -- time and scope -------------------------------------------------------------------


def check_time(grant: Grant, now: datetime, ceiling: timedelta) -> None:
    if now < grant.issued - CLOCK_SKEW:
        raise GrantMalformedError(f"grant {grant.id} is issued in the future ({grant.issued})")
    if now >= grant.expires:
        raise GrantExpiredError(f"grant {grant.id} expired at {grant.to_dict()['expires']}")
    if grant.expires - grant.issued > ceiling:
        raise GrantExpiredError(
            f"grant {grant.id} lives {format_duration(grant.expires - grant.issued)}, above the "
            f"policy's current ceiling of {format_duration(ceiling)}")


def check_scope(grant: Grant, *, env: str, action: str, risk: Risk, hosts: Sequence[str],
                params: Mapping[str, Any]) -> None:
    """Raise GrantScopeError naming the first thing the grant does not cover."""
    if env != grant.env:
        raise GrantScopeError(f"grant {grant.id} is for {grant.env}, not {env}")
    if action not in grant.actions:
        raise GrantScopeError(f"grant {grant.id} covers {', '.join(grant.actions)}, not {action}")
    if risk > grant.max_risk:
        raise GrantScopeError(f"grant {grant.id} covers up to {grant.max_risk.name}, "
                              f"{action} is {risk.name}")
    if not hosts:
        raise GrantScopeError(f"grant {grant.id} never covers a run without hosts")
    globs = host_globs(grant.hosts)
    if globs:
        outside = [h for h in hosts if not any(fnmatch.fnmatchcase(h, g) for g in globs)]
        if outside:
            raise GrantScopeError(f"grant {grant.id} covers hosts {grant.hosts}, not "
                                  f"{', '.join(outside[:5])}" + (" …" if len(outside) > 5 else ""))
    for key, allowed in grant.params.items():
        if key not in params:
            raise GrantScopeError(f"grant {grant.id} constrains {key}, which this run lacks")
        value = param_text(params[key])
        if value not in allowed:
            raise GrantScopeError(f"grant {grant.id} allows {key} in {{{', '.join(allowed)}}}, "
                                  f"not {value!r}")


def covers(grant: Grant, *, env: str, action: str, risk: Risk, hosts: Sequence[str],
           params: Mapping[str, Any]) -> bool:
    try:
        check_scope(grant, env=env, action=action, risk=risk, hosts=hosts, params=params)
    except GrantScopeError:
        return False
    return True


def param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parse_param_constraints(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["service=nginx,redis", …]`` -> ``{"service": ("nginx", "redis")}``."""
    found: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not re.fullmatch(PARAM_NAME, key.strip()) or not all(parts):
            raise GrantMalformedError(f"--param {item!r}: use KEY=VALUE[,VALUE…]")
        bucket = found.setdefault(key.strip(), [])
        bucket.extend(v for v in parts if v not in bucket)
    return {k: tuple(v) for k, v in found.items()}


def host_globs(hosts: str | None) -> tuple[str, ...]:
    """Split ``web*,db1`` into globs; Ansible group, regex or set syntax is refused."""
    globs = tuple(g.strip() for g in (hosts or "").split(",") if g.strip())
    for glob in globs:
        if not _GLOB.match(glob):
            raise GrantMalformedError(f"--hosts {glob!r}: use host names and * ? [] globs only")
    return globs
