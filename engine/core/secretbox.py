"""Secrets at rest: authenticated encryption (AES-256-GCM, ``cryptography``) under a rotatable keyring.

Stored form of a secret: ``mre1$<key id>$<base64url(nonce ‖ ciphertext ‖ tag)>``; the column it belongs to
is bound in as associated data, so a ciphertext copied into another column does not decrypt. Values without
the prefix are legacy plaintext rows and read as they are (``memrelay secrets rotate`` encrypts them).

The keyring comes from ``MEMRELAY_SECRET_KEYS`` (JSON ``{"primary": id, "keys": {id: base64url 32 bytes}}``,
for deployments whose processes share no disk), else ``<data dir>/secret_keys.json`` (created 0600 with one
fresh key on first use). New values are encrypted with the primary key; any key in the ring decrypts. A
process meeting an unknown key id re-reads its key source once (another process rotated).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from memrelay.engine.core.errors import ConfigError

PREFIX = "mre1$"
KEYS_FILE = "secret_keys.json"


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


@dataclass
class Keyring:
    """Keys by id and which one encrypts. ``reload`` re-reads the key source (unknown key id met)."""

    keys: dict[str, bytes]
    primary: str
    reload: Callable[[], Keyring] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.primary not in self.keys or any(len(k) != 32 for k in self.keys.values()):
            raise ConfigError("secret keyring is invalid: the primary key must be present and keys 32 bytes")

    def encrypt(self, plaintext: str, *, aad: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.keys[self.primary]).encrypt(nonce, plaintext.encode(), aad.encode())
        return f"{PREFIX}{self.primary}${_b64e(nonce + sealed)}"

    def decrypt(self, stored: str, *, aad: str) -> str:
        if not is_encrypted(stored):
            return stored  # a row written before encryption at rest
        try:
            kid, body = stored[len(PREFIX):].split("$", 1)
        except ValueError:
            raise ConfigError("a stored secret is malformed") from None
        if kid not in self.keys and self.reload is not None:
            fresh = self.reload()
            self.keys.update(fresh.keys)
            self.primary = fresh.primary
        if kid not in self.keys:
            raise ConfigError(f"a stored secret uses key {kid!r}, which is not in the keyring "
                              "(MEMRELAY_SECRET_KEYS or <data dir>/secret_keys.json)", details={"keyId": kid})
        raw = _b64d(body)
        try:
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], aad.encode()).decode()
        except InvalidTag:
            raise ConfigError("a stored secret failed authentication (wrong key or altered row)",
                              details={"keyId": kid}) from None

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "keys": {k: _b64e(v) for k, v in self.keys.items()}}


def new_key_id() -> str:
    return secrets.token_hex(2)


def parse_keyring(text: str) -> Keyring:
    try:
        data = json.loads(text)
        keys = {str(k): _b64d(str(v)) for k, v in data["keys"].items()}
        return Keyring(keys=keys, primary=str(data["primary"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError("secret keyring is not valid JSON {\"primary\": id, \"keys\": {id: base64}}") from None


def write_keyring_file(path: Path, ring: Keyring) -> None:
    """Write atomically, 0600 from the start."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(ring.to_json(), f)
    os.replace(tmp, path)


def load_keyring(env_value: str | None, data_dir: Path) -> Keyring:
    """The keyring from the environment value, else the data dir's file (created with a fresh key if absent)."""
    if env_value:
        ring = parse_keyring(env_value)
        ring.reload = lambda: parse_keyring(env_value)
        return ring
    path = data_dir / KEYS_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        kid = new_key_id()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # first process wins
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(Keyring({kid: AESGCM.generate_key(bit_length=256)}, kid).to_json(), f)
    ring = parse_keyring(path.read_text())
    ring.reload = lambda: parse_keyring(path.read_text())
    return ring


_lock = threading.Lock()
_ring: Keyring | None = None
_loader: Callable[[], Keyring] | None = None


def configure_keyring(loader: Callable[[], Keyring]) -> None:
    """Set how this process finds its keyring (loaded on first use). Keys already met stay known."""
    global _loader
    with _lock:
        _loader = loader


def keyring() -> Keyring:
    """This process's keyring (ConfigError if none was configured)."""
    global _ring, _loader
    with _lock:
        if _loader is not None:
            ring = _loader()
            if _ring is not None:
                ring.keys = {**_ring.keys, **ring.keys}
            _ring, _loader = ring, None
        if _ring is None:
            raise ConfigError("no secret keyring is configured (Services configures it from the settings)")
        return _ring
