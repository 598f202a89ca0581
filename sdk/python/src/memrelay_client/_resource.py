"""One resource class per concern serves both clients: each method is written once as a builder returning a
:class:`Call` (or :class:`Paged`); the descriptors below run it on the resource's transport. On a
``Resource[Sync]`` a method returns its result, on a ``Resource[Async]`` an awaitable of it — and type
checkers see exactly that (overloaded ``__get__``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from memrelay_client._protocol import Call, Paged
from memrelay_client._transport import AsyncTransport, SyncTransport

P = ParamSpec("P")
T = TypeVar("T")
ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


class Sync:
    """Marker: methods of a ``Resource[Sync]`` block and return results."""


class Async:
    """Marker: methods of a ``Resource[Async]`` return awaitables (iterators: async iterators)."""


ModeT = TypeVar("ModeT", Sync, Async)


class Resource(Generic[ModeT]):
    """Base of the per-concern resources (memory, records, ...), bound to one transport."""

    def __init__(self, transport: SyncTransport | AsyncTransport) -> None:
        self._transport = transport


class operation(Generic[P, T]):  # noqa: N801 - used as a decorator
    """Decorates a builder ``(self, ...) -> Call[T]`` into a method returning ``T`` (sync) or
    ``Awaitable[T]`` (async)."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, transport = self.build, obj._transport

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return transport.execute(build(obj, *args, **kwargs))

        method.__name__, method.__doc__ = self.__name__, self.__doc__
        return method


class paginated(Generic[P, ItemT, PageT]):  # noqa: N801 - used as a decorator
    """Decorates a builder ``(self, ...) -> Paged[Item, Page]`` into a method returning ``Iterator[Item]``
    (sync) or ``AsyncIterator[Item]`` (async) that fetches the following pages as it goes."""

    def __init__(self, build: Callable[Concatenate[Any, P], Paged[ItemT, PageT]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, Iterator[ItemT]]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, AsyncIterator[ItemT]]: ...

    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, transport = self.build, obj._transport

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return transport.paginate(build(obj, *args, **kwargs))

        method.__name__, method.__doc__ = self.__name__, self.__doc__
        return method
