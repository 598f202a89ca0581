"""One resource per concern; each works in both clients (see :mod:`memrelay_client._resource`)."""
