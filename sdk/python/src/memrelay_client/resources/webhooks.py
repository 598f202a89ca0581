"""Outbound webhook subscriptions: CRUD, event types, the private-host allowlist and deliveries."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Literal

from memrelay_client._decode import as_dict, listed, one, strings
from memrelay_client._protocol import Call, Paged
from memrelay_client._resource import ModeT, Resource, operation, paginated
from memrelay_client.models._base import drop_none
from memrelay_client.models.webhooks import DeliveryPage, Subscription


def _deliveries_call(subscription_id: str, page: int, page_size: int) -> Call[DeliveryPage]:
    return Call("GET", f"/webhooks/{subscription_id}/deliveries", one(DeliveryPage),
                params={"page": page, "pageSize": page_size})


class Webhooks(Resource[ModeT]):
    """``client.webhooks``: signed (Standard Webhooks) deliveries of memrelay events to your URLs."""

    @operation
    def list(self, *, kind: Literal["webhook", "zapier_hook"] | None = None) -> Call[builtins.list[Subscription]]:
        """The org's subscriptions (secrets never shown)."""
        return Call("GET", "/webhooks", listed(Subscription, "webhooks"), params={"kind": kind})

    @operation
    def create(self, url: str, event_types: Sequence[str], *, description: str = "",
               active: bool = True) -> Call[Subscription]:
        """Subscribe ``url`` to ``event_types`` (``["*"]`` for all); ``secret`` (whsec_…) is returned once."""
        body = {"url": url, "eventTypes": list(event_types), "description": description, "active": active}
        return Call("POST", "/webhooks", one(Subscription), json=body)

    @operation
    def get(self, subscription_id: str) -> Call[Subscription]:
        """One subscription."""
        return Call("GET", f"/webhooks/{subscription_id}", one(Subscription))

    @operation
    def update(self, subscription_id: str, *, url: str | None = None, event_types: Sequence[str] | None = None,
               description: str | None = None, active: bool | None = None) -> Call[Subscription]:
        """Change URL, event types, description or ``active`` (re-activating clears an automatic disable)."""
        body = drop_none(url=url, eventTypes=None if event_types is None else list(event_types),
                         description=description, active=active)
        return Call("PATCH", f"/webhooks/{subscription_id}", one(Subscription), json=body)

    @operation
    def delete(self, subscription_id: str) -> Call[dict[str, Any]]:
        """Delete a subscription and its delivery log."""
        return Call("DELETE", f"/webhooks/{subscription_id}", as_dict)

    @operation
    def event_types(self) -> Call[builtins.list[str]]:
        """Every event type a subscription can name."""
        return Call("GET", "/webhooks/event-types", strings("eventTypes"))

    @operation
    def allowlist(self) -> Call[builtins.list[str]]:
        """Hosts, IPs and CIDRs the org allows as non-public webhook targets."""
        return Call("GET", "/webhooks/allowlist", strings("hosts"))

    @operation
    def set_allowlist(self, hosts: Sequence[str]) -> Call[builtins.list[str]]:
        """Replace the allowlist of non-public targets (admin scope)."""
        return Call("PUT", "/webhooks/allowlist", strings("hosts"), json={"hosts": list(hosts)})

    @operation
    def deliveries(self, subscription_id: str, *, page: int = 1, page_size: int = 50) -> Call[DeliveryPage]:
        """One page of deliveries, newest first, each with every attempt."""
        return _deliveries_call(subscription_id, page, page_size)

    @paginated
    def iter_deliveries(self, subscription_id: str, *,
                        page_size: int = 100) -> Paged[dict[str, Any], DeliveryPage]:
        """Every delivery of a subscription, page by page."""

        def next_call(page: DeliveryPage) -> Call[DeliveryPage] | None:
            return _deliveries_call(subscription_id, page.page + 1, page_size) if page.has_more else None

        return Paged(_deliveries_call(subscription_id, 1, page_size), next_call, lambda page: page.deliveries)

    @operation
    def redeliver(self, subscription_id: str, delivery_id: str) -> Call[dict[str, Any]]:
        """Send a delivery again now (same webhook-id)."""
        return Call("POST", f"/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver", as_dict)
