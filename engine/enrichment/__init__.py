"""Proactive enrichment: inferred, standardised properties computed from everything known about a record.

A collection property marked ``inferred`` (:class:`memrelay.engine.core.properties_types.InferredSpec`) is
computed — not extracted — from the record's memories, other properties and linked company, by one of two
:class:`~memrelay.engine.enrichment.inference.Inferrer` paths (an LLM with structured output, or an offline
keyword/embedding classifier that answers "unknown" rather than guess). Values are written as ordinary
property values with ``source="inference"``, a confidence, the producer as ``actor`` and their evidence in
property history; a value from any other source is never overwritten. Changes to the evidence mark inferred
properties stale (:mod:`~memrelay.engine.enrichment.freshness`); whole collections are enriched by resumable,
chunked runs (:mod:`~memrelay.engine.enrichment.runs`).
"""
