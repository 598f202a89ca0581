"""Salesforce: Outbound Message verification (path token + organization allowlist), parsing and the
SOAP ACK (``webhook``), the REST/Bulk 2.0 client for fetch and backfill (``api``), the source config model
(``config``), ``mapping.yaml``, ``fixtures/``.

May import the shared helpers of ``memrelay.connectors`` (base, config, signing, safexml, timeutil,
crm_http, mapping) and ``simple-salesforce``; kept import-light (the registry imports only ``config``)."""
