"""Response (and query-string) models of the HTTP API, one module per area.

They describe what the views really answer (``data`` of the success envelope) and feed ``/openapi.json``;
the views keep returning plain dicts. Fields that are always present are required; keys a view adds only
in some cases are optional. A model allows extra keys only where the payload is genuinely open (property
maps, job results, provider payloads)."""
