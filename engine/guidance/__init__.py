"""Guidance services: guidelines with routing and delivery, multi-step generation, agents.
May import the memory services and the layers below."""
