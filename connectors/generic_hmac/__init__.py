"""Signed generic webhooks (``X-Signature: t=..,v1=..``) parsed as form submissions (``webhook``),
``fixtures/``; default mapping ``forms/mapping.yaml``. May import the shared helpers of
``memrelay.connectors`` (base, signing, form_record)."""
