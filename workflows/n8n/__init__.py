"""Render memrelay workflows (and the classic data paths) as n8n workflow documents."""
