"""HubSpot: webhook signatures v1/v2/v3 and CRM event parsing (``webhook``), the CRM API client for
record fetch and backfill (``api``), the source config model (``config``), ``mapping.yaml``, ``fixtures/``.

May import the shared helpers of ``memrelay.connectors`` (base, config, signing, timeutil, crm_http,
mapping) and ``hubspot-api-client``; kept import-light (the registry imports only ``config``)."""
