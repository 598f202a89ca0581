"""Render memrelay workflows (and the classic data paths) as n8n workflow documents.

Pure: may import the rest of ``memrelay.workflows`` and ``memrelay.engine.domain``."""
