"""Generic HTTP actions (Webhooks by Zapier, Make, n8n, curl): records as JSON or form fields
(``webhook``), the source config model (``config``), ``mapping.yaml``, ``fixtures/``.
May import the shared helpers of ``memrelay.connectors`` (base, config, signing, formdata, timeutil)."""
