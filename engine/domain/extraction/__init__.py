"""Offline fact splitting, date anchoring and typed property extraction. Pure: may import
``memrelay.engine.core`` and the rest of ``memrelay.engine.domain``."""

from memrelay.engine.domain.extraction.offline import (
    ExtractedValue,
    anchor_relative_dates,
    extract_properties,
    split_facts,
)

__all__ = ["ExtractedValue", "anchor_relative_dates", "extract_properties", "split_facts"]
