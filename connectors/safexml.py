"""Parse untrusted XML without DTDs or entity declarations (billion laughs, XXE).

Uses ``defusedxml`` when it is installed. Otherwise (the default here: it is not a dependency) the body
is rejected if it contains ``<!DOCTYPE``/``<!ENTITY`` in its raw bytes, and a first expat pass with
DTD/entity handlers that abort catches declarations hidden by other encodings; only then is it handed to
``xml.etree.ElementTree``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from memrelay.engine.core.errors import BadRequest

try:  # pragma: no cover - depends on the environment
    from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
    from defusedxml.ElementTree import fromstring as _defused_fromstring  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover
    _defused_fromstring = None

    class DefusedXmlException(ValueError):  # type: ignore[no-redef]  # noqa: N818 - mirrors defusedxml's name
        """Placeholder so the except clause below works without defusedxml."""


_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class _Forbidden(Exception):
    pass


def _forbid(*_args: Any) -> int:
    raise _Forbidden


def _expat_guard(raw: bytes) -> None:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.Parse(raw, True)


def parse_xml(raw: bytes) -> ET.Element:
    """Parse ``raw`` into an Element; ``BadRequest`` for malformed XML, DTDs or entity declarations."""
    if not raw.strip():
        raise BadRequest("empty XML body")
    if _FORBIDDEN.search(raw):
        raise BadRequest("XML DTDs and entity declarations are not allowed")
    try:
        if _defused_fromstring is not None:  # pragma: no cover
            return _defused_fromstring(raw)
        _expat_guard(raw)
        return ET.fromstring(raw)
    except _Forbidden as exc:
        raise BadRequest("XML DTDs and entity declarations are not allowed") from exc
    except (expat.ExpatError, ET.ParseError) as exc:
        raise BadRequest(f"malformed XML: {exc}") from exc
    except DefusedXmlException as exc:  # pragma: no cover
        raise BadRequest(f"unsafe XML rejected: {type(exc).__name__}") from exc
