#!/usr/bin/env python3
"""Write MANIFEST.json entries for the copied Go gRPC captures in captures/public/grpc-go/.

They are real captures (PacktPublishing/gRPC-Go-for-Professionals, MIT): NULL/loopback
link type, IPv6 ::1, h2c with prior knowledge on port 50051, which tshark only decodes when
told (-d tcp.port==50051,http2). The entries say what tshark shows, like the others.

    python3 captures/list_public.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixturelib import CAPTURES, describe_format, tshark_h2_summary, tshark_summary, update_manifest

ARGS = ["-d", "tcp.port==50051,http2"]
TESTS = {
    "grpc-go-unary.pcapng": "real Go gRPC unary call on ::1:50051 among 4,300 frames of unrelated "
    "loopback TCP noise; its request carries an authorization header",
    "grpc-go-client-streaming.pcapng": "real Go gRPC client-streaming call on ::1:50051",
    "grpc-go-server-streaming.pcapng": "real Go gRPC server-streaming call on ::1:50051",
    "grpc-go-bidi-streaming.pcapng": "real Go gRPC bidirectional-streaming call on ::1:50051",
}


def entry(path: Path) -> dict[str, Any]:
    summary = tshark_summary(path, ARGS)
    h2 = tshark_h2_summary(path, ARGS)
    return {
        "file": str(path.relative_to(CAPTURES)),
        "made_by": "public:grpc-go (list_public.py)",
        "tests": TESTS[path.name],
        **describe_format(path),
        "frames": summary["frames"],
        "tcp_connections": summary["tcp_connections"],
        "http_messages": h2["http_messages"],
        "anomalies": [],
        "error": None,
        "tshark": {"args": ARGS, "unknown_headers": h2["unknown_headers"], "requests": 0,
                   "responses": 0,
                   "note": "h2 only: tshark's http.request/response counts stay 0"},
    }


def main() -> None:
    paths = sorted((CAPTURES / "public" / "grpc-go").glob("*.pcapng"))
    update_manifest([entry(p) for p in paths], owner="public:grpc-go")
    print(f"listed {len(paths)} captures")


if __name__ == "__main__":
    main()
