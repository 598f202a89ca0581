"""Egress: everything memrelay sends out. The SSRF guard, Standard Webhooks signing, outbound webhook
subscriptions, deliveries and the outbox dispatcher. May import guidance and the layers below."""
