"""``memrelay secrets rotate``: a new primary key, every stored secret re-encrypted under it, old keys dropped.

Order keeps every row readable at every moment: (1) the new key is added to the key source as primary
(old keys kept), (2) each row is rewritten in its own small transaction — including legacy plaintext rows —
(3) only then are the old keys removed. A crash in (2) leaves both keys in the ring; running the command
again finishes the job. With ``MEMRELAY_SECRET_KEYS`` (no key file; several hosts) the operator first puts a
new key in the variable as primary, keeping the old ones, and restarts; the command then only re-encrypts
under that primary and names the key ids that may be removed from the variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from memrelay.engine.core.secretbox import KEYS_FILE, Keyring, keyring, new_key_id, write_keyring_file
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Source
from memrelay.engine.stores.db.models_outbound import WebhookSubscription

ENCRYPTED_COLUMNS: dict[type, tuple[str, ...]] = {
    Source: ("secret", "previous_secrets", "token", "config"),
    WebhookSubscription: ("secret", "previous_secret"),
}


@dataclass(frozen=True)
class RotationResult:
    new_key_id: str
    retired_key_ids: tuple[str, ...]
    rows: int
    keyring: Keyring


def rotate_secrets(db: Database, data_dir: Path, *, keys_from_env: bool) -> RotationResult:
    """Rotate to a fresh primary key and re-encrypt every secret column (see the module docstring)."""
    ring = keyring()
    if keys_from_env:
        kid = ring.primary
    else:
        kid = new_key_id()
        while kid in ring.keys:
            kid = new_key_id()
        ring.keys[kid] = AESGCM.generate_key(bit_length=256)
        ring.primary = kid
    old_ids = tuple(k for k in ring.keys if k != kid)
    path = data_dir / KEYS_FILE
    if not keys_from_env:
        write_keyring_file(path, ring)
    rows = 0
    for model, columns in ENCRYPTED_COLUMNS.items():
        with db.read() as s:
            ids = list(s.scalars(select(model.id)))  # type: ignore[attr-defined]
        for row_id in ids:
            with db.session() as s:
                row = s.get(model, row_id)
                if row is None:
                    continue
                for column in columns:
                    flag_modified(row, column)  # written again: encrypted under the new primary
                rows += 1
    if not keys_from_env:
        for old in old_ids:
            del ring.keys[old]
        write_keyring_file(path, ring)
    return RotationResult(kid, old_ids, rows, ring)
