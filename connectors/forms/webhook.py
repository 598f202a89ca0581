"""The ``form`` connector: unsigned form posts (any form tool with a webhook URL), guarded by the source token.

Accepts JSON or form-encoded bodies. The token comes from the webhook URL (``/webhooks/form/<id>/<token>``,
passed by the gateway as ``token=``) or an ``X-Memrelay-Token`` header, compared in constant time.
"""

from __future__ import annotations

from collections.abc import Mapping

from memrelay.connectors.base import BaseConnector, InboundEvent, SourceConfig, Verified
from memrelay.connectors.form_record import parse_generic_form
from memrelay.connectors.signing import provided_token, verify_token


class TokenFormConnector(BaseConnector):
    """Unsigned form posts authenticated by the per-source token."""

    name = "form"

    def verify(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        source: SourceConfig,
        method: str = "POST",
        url: str = "",
        token: str | None = None,
        now: float | None = None,
    ) -> Verified:
        verify_token(source.token, provided_token(headers, token))
        return self.verified(source, raw_body, headers)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One ``form.submitted`` event per request."""
        return [parse_generic_form(self, self.opened(verified))]
