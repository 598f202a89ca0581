"""Offline fact splitting, date anchoring and typed property extraction."""

from memrelay.engine.domain.extraction.offline import (
    ExtractedValue,
    anchor_relative_dates,
    extract_properties,
    split_facts,
)

__all__ = ["ExtractedValue", "anchor_relative_dates", "extract_properties", "split_facts"]
