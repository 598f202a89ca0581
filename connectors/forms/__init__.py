"""The ``form`` connector: unsigned form posts guarded by the source token (``webhook``), and the
``mapping.yaml`` every form connector (``form``, ``typeform``-like ``webflow``, ``generic_hmac``) shares;
``fixtures/``. May import the shared helpers of ``memrelay.connectors`` (base, signing, form_record)."""
