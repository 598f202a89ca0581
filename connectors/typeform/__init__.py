"""Typeform: ``Typeform-Signature`` verification and ``form_response`` parsing (``webhook``),
``mapping.yaml``, ``fixtures/``. May import the shared helpers of ``memrelay.connectors``
(base, signing, form_record, timeutil)."""
