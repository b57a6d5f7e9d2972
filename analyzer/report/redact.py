"""Which header values are credentials, and how they are shown."""

from __future__ import annotations

import base64

SECRET_HEADERS = frozenset(
    (
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"set-cookie2",
        b"x-api-key",
        b"api-key",
        b"x-auth-token",
        b"x-access-token",
        b"x-csrf-token",
        b"x-xsrf-token",
        b"x-amz-security-token",
        b"x-goog-iap-jwt-assertion",
        b"x-forwarded-client-cert",  # Envoy's XFCC carries the peer's certificate details
        b"x-istio-attributes",
        b"x-envoy-peer-metadata",
        b"x-jwt-payload",
        b"grpc-metadata-authorization",
    )
)
# Names that hint at a credential even when not listed above (x-my-service-token, ...).
_SECRET_PARTS = (b"token", b"secret", b"password", b"passwd", b"api-key", b"apikey", b"session")


_verdicts: dict[bytes, bool] = {}


def is_secret(lname: bytes | None) -> bool:
    if lname is None:
        return False
    verdict = _verdicts.get(lname)
    if verdict is None:
        verdict = lname in SECRET_HEADERS or any(part in lname for part in _SECRET_PARTS)
        if len(_verdicts) < 4096:  # header names repeat; a hostile capture cannot grow this
            _verdicts[lname] = verdict
    return verdict


def text(value: bytes) -> str:
    """Bytes as text without losing any: UTF-8, undecodable bytes shown as \\xNN escapes."""
    return value.decode("utf-8", "backslashreplace")


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def binary_value(value: bytes) -> str:
    """A gRPC ``-bin`` value as base64: as sent when it is base64 text already; the raw
    bytes encoded when it came as true binary (a leading NUL marks that)."""
    if value[:1] == b"\x00":
        return base64.b64encode(value[1:]).decode("ascii")
    if _B64.issuperset(value):
        return value.decode("ascii")
    return base64.b64encode(value).decode("ascii")


def display_value(lname: bytes | None, value: bytes | None, show_secrets: bool) -> str | None:
    if value is None:
        return None
    if not show_secrets and is_secret(lname):
        return f"<redacted, {len(value)} bytes>"
    if lname is not None and lname.endswith(b"-bin"):
        return binary_value(value)
    return text(value)
