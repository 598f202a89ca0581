"""Column types that keep secrets encrypted at rest (see :mod:`memrelay.engine.core.secretbox`).

``EncryptedText`` stores a string, ``EncryptedJSON`` a JSON value (as ``{"mrenc": "<ciphertext>"}`` in the
JSON column). ``purpose`` (``"sources.secret"``...) is bound in as associated data. Rows written before
encryption read as plaintext until ``memrelay secrets rotate`` rewrites them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.secretbox import keyring

ENVELOPE_KEY = "mrenc"


class EncryptedText(TypeDecorator[str]):
    """A secret string; ``length`` keeps a bounded column's width (the ciphertext must fit)."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str, length: int | None = None):
        super().__init__()
        self.purpose, self.length = purpose, length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String(self.length) if self.length else Text())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        sealed = keyring().encrypt(value, aad=self.purpose)
        if self.length and len(sealed) > self.length:
            raise ValidationFailed(f"{self.purpose} is too long to store encrypted",
                                   details={"maxEncryptedLength": self.length})
        return sealed

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring().decrypt(value, aad=self.purpose)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value whose content is encrypted (the column holds ``{"mrenc": ciphertext}``)."""

    impl = JSON
    cache_ok = True

    def __init__(self, purpose: str):
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return {ENVELOPE_KEY: keyring().encrypt(json.dumps(value), aad=self.purpose)}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, dict) and set(value) == {ENVELOPE_KEY} and isinstance(value[ENVELOPE_KEY], str):
            return json.loads(keyring().decrypt(value[ENVELOPE_KEY], aad=self.purpose))
        return value  # a row written before encryption at rest
