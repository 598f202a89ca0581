"""memrelay_client — typed Python client for the memrelay gateway (sync and async).

    from memrelay_client import MemrelayClient

    with MemrelayClient(api_key="mr_...", base_url="http://127.0.0.1:8080") as client:
        client.memory.memorize("Ada prefers PostgreSQL.", email="ada@acme.com", tags=["note"])
        print(client.memory.smart_recall("Which database?", email="ada@acme.com").results[0].text)
"""

from memrelay_client._version import __version__
from memrelay_client.client import AsyncMemrelayClient, MemrelayClient
from memrelay_client.errors import (
    APIError,
    AuthenticationError,
    BudgetExhaustedError,
    ConflictError,
    InvalidRequestError,
    MemrelayConnectionError,
    MemrelayError,
    MemrelayTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationFailedError,
)
from memrelay_client.models.collections import PropertyDefinition
from memrelay_client.models.generation import Instruction, OutputSpec
from memrelay_client.models.memory import BatchMapping, PropertyMapping
from memrelay_client.models.records import SearchCondition, SearchGroup
from memrelay_client.retry import NO_RETRIES, RetryPolicy, parse_retry_after

__all__ = [
    "APIError", "AsyncMemrelayClient", "AuthenticationError", "BatchMapping", "BudgetExhaustedError",
    "ConflictError", "Instruction", "InvalidRequestError", "MemrelayClient", "MemrelayConnectionError",
    "MemrelayError", "MemrelayTimeoutError", "NO_RETRIES", "NotFoundError", "OutputSpec", "PermissionDeniedError",
    "PropertyDefinition", "PropertyMapping", "RateLimitError", "RetryPolicy", "SearchCondition", "SearchGroup",
    "ServerError", "ServiceUnavailableError", "UnexpectedResponseError", "ValidationFailedError", "__version__", "parse_retry_after",
]
