"""The one table of connectors: name, metadata, config model, default mapping, and the connector class.

Adding a connector = a package ``connectors/<name>/`` (``webhook.py``, ``mapping.yaml``, ``fixtures/``,
``README.md``, optional ``config.py``/``api.py``) + one :class:`ConnectorInfo` line below + its tests.

Connector classes and config models are named as ``"module:Class"`` and imported on first use, so the
registry depends on no connector package (packages may use the registry and the mapping helpers without an
import cycle) and the Stripe and CRM SDKs load only with the connectors that need them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from memrelay.connectors.base import Connector
from memrelay.connectors.config import ConnectorConfig, NoConfig
from memrelay.engine.core.errors import NotFound

PACKAGE_DIR = Path(__file__).parent

HUBSPOT_OBJECTS = ("contact", "company", "deal", "ticket")  # == hubspot.webhook.OBJECT_TYPES (test_registry)
HUBSPOT_ACTIONS = ("creation", "propertyChange", "deletion", "merge", "restore", "associationChange",
                   "privacyDeletion")


@dataclass(frozen=True)
class ConnectorInfo:
    """Metadata of one connector.

    - ``package``: its folder under ``connectors/`` (mapping, fixtures, README);
    - ``connector``: ``"module:Class"`` of the connector, imported on first use;
    - ``events``: event types it emits (``<object>.*`` patterns where the provider's list is open);
    - ``auth``: how deliveries are authenticated; ``uses_secret``/``uses_token``: whether the source's
      signing secret / path token take part;
    - ``config``: ``"module:Class"`` of the typed ``config`` (``None``: no options), loaded as
      :attr:`config_model`; its ``SecretStr`` fields are the config's secrets;
    - ``mapping_package``: whose ``mapping.yaml`` is the default (the form connectors share one);
    - ``supports_fetch``: full records read from the provider's API per event; ``supports_sync``: backfill;
    - ``accepts_api_key``: the gateway's API-key check may stand in for the connector's own verification.
    """

    name: str
    display_name: str
    package: str
    connector: str
    events: tuple[str, ...]
    auth: str
    config: str | None = None
    uses_secret: bool = False
    uses_token: bool = False
    mapping_package: str | None = None
    supports_fetch: bool = False
    supports_sync: bool = False
    accepts_api_key: bool = False

    @property
    def config_model(self) -> type[ConnectorConfig]:
        """The connector's config model class (:class:`NoConfig` when it takes no options)."""
        return cast(type[ConnectorConfig], _load(self.config)) if self.config else NoConfig

    @property
    def default_mapping(self) -> Path:
        """The shipped default mapping file."""
        return PACKAGE_DIR / (self.mapping_package or self.package) / "mapping.yaml"

    @property
    def package_dir(self) -> Path:
        return PACKAGE_DIR / self.package

    @property
    def secret_fields(self) -> frozenset[str]:
        """Secret values of a source of this connector: its config model's secrets, the signing secret and
        path token where used."""
        columns = {"secret"} if self.uses_secret else set()
        if self.uses_token:
            columns.add("token")
        return self.config_model.secret_fields() | columns


FORM_EVENTS = ("form.submitted",)

CONNECTORS: tuple[ConnectorInfo, ...] = (
    ConnectorInfo(
        "hubspot", "HubSpot", "hubspot", "memrelay.connectors.hubspot.webhook:HubSpotConnector",
        events=tuple(f"{o}.{a}" for o in HUBSPOT_OBJECTS for a in HUBSPOT_ACTIONS),
        auth="X-HubSpot-Signature v1/v2/v3 (v3: HMAC-SHA256, 5-minute window)",
        config="memrelay.connectors.hubspot.config:HubSpotConfig",
        uses_secret=True, supports_fetch=True, supports_sync=True),
    ConnectorInfo(
        "salesforce", "Salesforce", "salesforce", "memrelay.connectors.salesforce.webhook:SalesforceConnector",
        events=("contact.upsert", "company.upsert", "deal.upsert", "ticket.upsert", "<sobject>.upsert"),
        auth="path token + OrganizationId allowlist (Outbound Messages carry no HMAC)",
        config="memrelay.connectors.salesforce.config:SalesforceConfig",
        uses_token=True, supports_fetch=True, supports_sync=True),
    ConnectorInfo(
        "stripe", "Stripe", "stripe", "memrelay.connectors.stripe.webhook:StripeConnector",
        events=("customer.*", "invoice.*", "checkout.session.completed", "payment_intent.succeeded"),
        auth="Stripe-Signature (HMAC-SHA256 of t.body, 300 s window)", uses_secret=True),
    ConnectorInfo(
        "typeform", "Typeform", "typeform", "memrelay.connectors.typeform.webhook:TypeformConnector",
        events=FORM_EVENTS, auth="Typeform-Signature: sha256=<base64 HMAC-SHA256>", uses_secret=True),
    ConnectorInfo(
        "webflow", "Webflow", "webflow", "memrelay.connectors.webflow.webhook:WebflowConnector",
        events=FORM_EVENTS, auth="x-webflow-timestamp + x-webflow-signature (hex HMAC, 5 minutes)",
        uses_secret=True, mapping_package="forms"),
    ConnectorInfo(
        "generic_hmac", "Signed webhook", "generic_hmac", "memrelay.connectors.generic_hmac.webhook:GenericHmacConnector",
        events=FORM_EVENTS, auth="X-Signature: t=..,v1=<hex HMAC-SHA256 of t.body>, 5 minutes",
        uses_secret=True, mapping_package="forms"),
    ConnectorInfo(
        "form", "Web form", "forms", "memrelay.connectors.forms.webhook:TokenFormConnector",
        events=FORM_EVENTS, auth="per-source path token", uses_token=True),
    ConnectorInfo(
        "generic", "Generic HTTP (Zapier, Make, n8n)", "generic", "memrelay.connectors.generic.webhook:GenericConnector",
        events=("<object_type>.upsert", "<body event_type>"),
        auth="the org's API key, or the per-source path token",
        config="memrelay.connectors.generic.config:GenericConfig",
        uses_token=True, accepts_api_key=True),
)

_BY_NAME: dict[str, ConnectorInfo] = {info.name: info for info in CONNECTORS}


def connector_names() -> list[str]:
    """Names accepted by :func:`get_connector`."""
    return sorted(_BY_NAME)


def connector_info(name: str) -> ConnectorInfo:
    """The metadata registered under ``name``; ``NotFound`` if unknown."""
    info = _BY_NAME.get(name)
    if info is None:
        raise NotFound(f"unknown connector {name!r}", details={"known": connector_names()})
    return info


@cache
def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def get_connector(name: str) -> Connector:
    """The (stateless, shared) connector registered under ``name``; ``NotFound`` if unknown."""
    return cast(Connector, _load(connector_info(name).connector)())


def validate_config(name: str, config: Mapping[str, Any]) -> ConnectorConfig:
    """Check a client-supplied source ``config``; ``ValidationFailed`` (422) naming each bad field.

    The stored config stays the plain JSON the client sent; this only checks it."""
    return connector_info(name).config_model.validate_input(config, connector=name)


def token_in_path(name: str) -> bool:
    """Whether a source of connector ``name`` is called at a URL carrying its path token."""
    return name in _BY_NAME and _BY_NAME[name].uses_token


def redact_config(name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A source's config with its secret values masked (an unknown connector masks the legacy names)."""
    model = _BY_NAME[name].config_model if name in _BY_NAME else NoConfig
    return model.redact(config)
