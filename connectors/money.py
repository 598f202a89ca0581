"""Currency minor-unit handling shared by the Stripe connector and the ``minor_to_major`` transform.

Exponents follow Stripe's rules (https://docs.stripe.com/currencies): zero-decimal currencies are sent
in whole units, three-decimal ones in thousandths, everything else in hundredths. ISK, HUF and TWD are
special cases Stripe still represents with two decimals, so they stay in the default.
"""

from __future__ import annotations

from decimal import Decimal

ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits for ``currency`` (ISO 4217 code, any case)."""
    code = currency.strip().lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def amount_major(amount: int, currency: str) -> int | float:
    """Minor units to major units: ``(1999, "usd") -> 19.99``, ``(500, "jpy") -> 500``."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an integer number of minor units, got {amount!r}")
    exponent = currency_exponent(currency)
    if exponent == 0:
        return amount
    return float(Decimal(amount).scaleb(-exponent))


def format_amount(amount: int, currency: str) -> str:
    """Text for memories: ``(1999, "usd") -> "19.99 USD"``, ``(500, "jpy") -> "500 JPY"``."""
    exponent = currency_exponent(currency)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f} {currency.strip().upper()}"
