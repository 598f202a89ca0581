"""Egress: everything memrelay sends out. The one guarded HTTP client (``http``: SSRF policy per use, pinned
connections, time and size bounds) used by outbound webhooks, workflow deliveries and the CRM API clients;
the SSRF guard (``ssrf``), Standard Webhooks signing, outbound webhook subscriptions, deliveries and the
outbox dispatcher. May import guidance and the layers below (and ``requests`` / ``urllib3``)."""
