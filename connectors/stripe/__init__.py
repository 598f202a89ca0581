"""Stripe: ``Stripe-Signature`` verification (stripe-python) and customer-centric event parsing
(``webhook``), ``mapping.yaml``, ``fixtures/``. No config beyond the signing secret.

May import the shared helpers of ``memrelay.connectors`` (base, signing, money, timeutil) and ``stripe``."""
