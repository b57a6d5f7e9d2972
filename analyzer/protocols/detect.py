"""Which protocol a byte stream carries, decided from its content, never from its port."""

from __future__ import annotations

from analyzer.protocols.h2 import PREFACE as H2_PREFACE

# TLS record content types: change_cipher_spec, alert, handshake, application_data.
_TLS_TYPES = frozenset((0x14, 0x15, 0x16, 0x17))


def looks_like_tls(data: bytes | bytearray | memoryview) -> bool:
    """A TLS record header: known content type, version 3.x, a length TLS allows."""
    if len(data) < 5:
        return False
    if data[0] not in _TLS_TYPES or data[1] != 3 or data[2] > 4:
        return False
    length = (data[3] << 8) | data[4]
    return 0 < length <= 16384 + 2048


def looks_like_h2_preface(data: bytes | bytearray | memoryview) -> bool | None:
    """True/False when decided, None when more bytes are needed."""
    n = min(len(data), len(H2_PREFACE))
    if bytes(data[:n]) != H2_PREFACE[:n]:
        return False
    return True if n == len(H2_PREFACE) else None
