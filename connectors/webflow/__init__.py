"""Webflow: ``x-webflow-signature`` verification and ``form_submission`` parsing (``webhook``), ``fixtures/``;
its default mapping is the shared ``forms/mapping.yaml``. May import the shared helpers of
``memrelay.connectors`` (base, signing, form_record, timeutil)."""
