"""API keys at rest: encrypted with a Fernet key kept in a file beside the store (0600).

Someone who copies only the database gets ciphertext; the key file never leaves the data directory, and the
export masks keys unless the operator asks for them."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..sqlite_files import create_private_file


class KeyFileError(Exception):
    pass


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self._fernet = Fernet(_load_or_create(key_file))

    def seal(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise KeyFileError("a provider's API keys do not decrypt with providers.key: the key file was replaced; "
                               "restore it, or remove and add the provider again") from None


def _load_or_create(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError:
            raise KeyFileError(f"{path} is not a Fernet key; restore it from a backup") from None
        return key
    key = Fernet.generate_key()
    create_private_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
