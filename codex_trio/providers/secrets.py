"""API keys at rest: encrypted with a Fernet key kept in a file beside the store (0600).

Someone who copies only the database gets ciphertext; the key file never leaves the data directory, and the
export masks keys unless the operator asks for them."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from ..sqlite_files import create_private_file


class KeyFileError(Exception):
    pass


class SecretBox:
    """`cryptography` is loaded on the first seal or open, not at start-up: a gateway without providers never
    needs its 6 MiB of bindings. The key file is checked (or created) at once."""

    def __init__(self, key_file: Path) -> None:
        self._key = _load_or_create(key_file)
        self._fernet = None

    def _box(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key)
        return self._fernet

    def seal(self, plain: bytes) -> bytes:
        return self._box().encrypt(plain)

    def open(self, sealed: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._box().decrypt(sealed)
        except InvalidToken:
            raise KeyFileError("a provider's API keys do not decrypt with providers.key: the key file was replaced; "
                               "restore it, or remove and add the provider again") from None


def _load_or_create(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes().strip()
        if not _is_fernet_key(key):
            raise KeyFileError(f"{path} is not a Fernet key; restore it from a backup")
        return key
    key = base64.urlsafe_b64encode(os.urandom(32))  # a Fernet key: 32 random bytes, URL-safe base64
    create_private_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def _is_fernet_key(key: bytes) -> bool:
    """What Fernet accepts as a key (32 bytes in URL-safe base64), checked without loading cryptography."""
    try:
        return len(base64.urlsafe_b64decode(key)) == 32
    except (binascii.Error, ValueError):
        return False
