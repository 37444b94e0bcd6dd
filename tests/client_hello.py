"""Reading a recorded TLS ClientHello (handshake message, record header stripped): the fields tests compare."""

from __future__ import annotations


def extensions(hello: bytes) -> dict[int, bytes]:
    """Extension type → body, from a ClientHello handshake message."""
    at = 4 + 2 + 32  # handshake header, client version, random
    at += 1 + hello[at]  # session id
    at += 2 + int.from_bytes(hello[at:at + 2], "big")  # cipher suites
    at += 1 + hello[at]  # compression methods
    end = at + 2 + int.from_bytes(hello[at:at + 2], "big")
    at += 2
    found: dict[int, bytes] = {}
    while at + 4 <= end:
        kind, size = int.from_bytes(hello[at:at + 2], "big"), int.from_bytes(hello[at + 2:at + 4], "big")
        found[kind] = hello[at + 4:at + 4 + size]
        at += 4 + size
    return found


def server_name(hello: bytes) -> str | None:
    body = extensions(hello).get(0)  # server_name: list length, name type (0 = host name), name length, name
    return body[5:5 + int.from_bytes(body[3:5], "big")].decode() if body else None


def alpn(hello: bytes) -> list[str]:
    body = extensions(hello).get(16)  # application_layer_protocol_negotiation: list length, then length-prefixed
    names, at = [], 2
    while body and at < len(body):
        names.append(body[at + 1:at + 1 + body[at]].decode())
        at += 1 + body[at]
    return names
