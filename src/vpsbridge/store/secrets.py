"""Secrets at rest: a MultiFernet box and where its keys come from.

The first key encrypts, every key decrypts, so rotation is: put a new key first, run
``vpsbridge keys rotate`` (which re-encrypts every stored secret with it), then drop the old key.

Keys come from ``VPSBRIDGE_ENCRYPTION_KEYS`` when set. In embedded mode (SQLite) an unset value
means "keep a key file next to the database": ``<data_dir>/secret.key``, created on first use with
mode 0600, newest key first, one per line, so a one-command install needs no key management. In
scale-out mode (PostgreSQL) several machines must decrypt the same rows, so a per-machine key file
would silently split the fleet; there, missing keys are a configuration error.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vpsbridge.config import ENV_PREFIX, ConfigError, Settings

KEYS_ENV = ENV_PREFIX + "ENCRYPTION_KEYS"
KEY_FILE_NAME = "secret.key"


class SecretDecryptError(Exception):
    """A stored secret cannot be read with any configured key."""


def generate_key() -> str:
    """A new random Fernet key (URL-safe base64 text)."""
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts with the first key and decrypts with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError(f"{KEYS_ENV}: at least one encryption key is required")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    f"{KEYS_ENV}: key #{position} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes; `vpsbridge keys generate` makes one)"
                ) from None
        self._box = MultiFernet(fernets)
        self._primary = fernets[0]
        self.key_count = len(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._box.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretDecryptError(
                f"a stored secret cannot be decrypted with any of the {self.key_count} configured key(s); "
                f"was a key removed from {KEYS_ENV} (or {KEY_FILE_NAME}) before `vpsbridge keys rotate` ran?"
            ) from None

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        value = json.loads(self.decrypt(token))
        if not isinstance(value, dict):
            raise SecretDecryptError("a stored secret is not a JSON object")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key (whichever key encrypted it before)."""
        try:
            return self._box.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretDecryptError(
                f"a stored secret cannot be decrypted with any of the {self.key_count} configured key(s)"
            ) from None

    def is_current(self, token: str) -> bool:
        """True when ``token`` is readable with the newest key alone (no rotation needed)."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True


def key_file_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE_NAME


def read_key_file(path: Path) -> list[str]:
    lines = path.read_text(encoding="ascii").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically, never leaving it readable by others even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("\n".join(keys) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_key_file(path: Path) -> list[str]:
    """Create the key file once; when two processes race, both end up with the winner's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(generate_key() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic and fails if the file exists: first creator wins
    finally:
        tmp.unlink(missing_ok=True)
    return read_key_file(path)


def load_keys(settings: Settings) -> list[str]:
    """The encryption keys, newest first (see the module docstring for where they come from)."""
    if settings.encryption_keys:
        return [k.get_secret_value().strip() for k in settings.encryption_keys]
    if not settings.is_sqlite:
        raise ConfigError(
            f"{KEYS_ENV} must be set in scale-out mode (PostgreSQL): every machine has to decrypt "
            "the same stored secrets, so they must share the keys (`vpsbridge keys generate` makes one)"
        )
    path = key_file_path(settings)
    if path.exists():
        keys = read_key_file(path)
        if not keys:
            raise ConfigError(f"{KEYS_ENV}: key file {path} is empty")
        return keys
    return _create_key_file(path)
