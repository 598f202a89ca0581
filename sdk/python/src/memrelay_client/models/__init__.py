"""Typed request and answer models (pydantic), one module per concern."""
