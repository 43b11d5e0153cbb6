"""How a resource method is written once and run by both clients: flows, pages, transports.

A method is a *flow*, a generator that yields each ``Call`` to send and receives its JSON body
(``@endpoint``), or a ``Pages`` description of a paged list (``@paged``). A ``Blocking``
transport (``client.py``) runs it to its result; an ``Awaiting`` one (``aio.py``) in a coroutine.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

from railguard._core import AuthState, Call, Json, next_page_token
from railguard.session import Tokens

__all__ = ["Awaiting", "Blocking", "Flow", "Pages", "Resource", "endpoint", "paged"]

T = TypeVar("T")
P = ParamSpec("P")

Flow = Generator[Call, Json, T]
"""A resource method's steps: yields each call to send, receives its body, returns the result."""


@dataclass(frozen=True, slots=True)
class Pages(Generic[T]):
    """A paged list: the call for a page token, and the key of the items in each page."""

    make: Callable[[str], Call]
    key: str


class Blocking(AuthState):
    """A transport that sends and waits (``client.py``): it runs a flow to its result."""

    @abstractmethod
    def send(self, call: Call) -> Json:
        """The body of ``call``'s answer, after refresh and retries."""

    @abstractmethod
    def refresh(self, stale: Tokens | None = None) -> Tokens:
        """Trade the refresh token for new tokens (once, whoever else asks meanwhile)."""

    def run(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(self.send(call))
        except StopIteration as done:
            return cast(T, done.value)

    def pages(self, make: Callable[[str], Call], key: str) -> Iterator[Json]:
        token = ""
        while True:
            page = self.send(make(token))
            yield from page.get(key) or []
            if not (token := next_page_token(page)):
                return


class Awaiting(AuthState):
    """A transport whose sends are awaited (``aio.py``): it runs a flow in a coroutine."""

    @abstractmethod
    async def send(self, call: Call) -> Json:
        """The body of ``call``'s answer, after refresh and retries."""

    @abstractmethod
    async def refresh(self, stale: Tokens | None = None) -> Tokens:
        """Trade the refresh token for new tokens (once, whoever else asks meanwhile)."""

    async def run(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self.send(call))
        except StopIteration as done:
            return cast(T, done.value)

    async def pages(self, make: Callable[[str], Call], key: str) -> AsyncIterator[Json]:
        token = ""
        while True:
            page = await self.send(make(token))
            for item in page.get(key) or []:
                yield item
            if not (token := next_page_token(page)):
                return


M = TypeVar("M", bound=AuthState, covariant=True)


class Resource(Generic[M]):
    """A group of methods over one transport: ``Resource[Blocking]`` or ``Resource[Awaiting]``."""

    def __init__(self, transport: M) -> None:
        self._t = transport


def _named(call: Callable[..., Any], spec: Callable[..., Any]) -> None:
    call.__name__, call.__qualname__, call.__doc__ = spec.__name__, spec.__qualname__, spec.__doc__


class endpoint(Generic[P, T]):  # lower case: used as a decorator
    """Makes a flow method a method of both clients: ``T`` on a blocking, a coroutine on an
    awaiting transport."""

    def __init__(self, spec: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self._spec = spec
        self.__doc__ = spec.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> endpoint[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Blocking], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: Resource[Awaiting], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Resource[AuthState] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        spec, transport = self._spec, obj._t
        if isinstance(transport, Awaiting):

            async def awaited(*args: P.args, **kwargs: P.kwargs) -> T:
                return await transport.run(spec(obj, *args, **kwargs))

            _named(awaited, spec)
            return awaited
        assert isinstance(transport, Blocking)

        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            return transport.run(spec(obj, *args, **kwargs))

        _named(blocking, spec)
        return blocking


class paged(Generic[P, T]):  # lower case: used as a decorator
    """Makes a ``Pages`` method a lazy iterator of the items of every page, or an async one."""

    def __init__(self, spec: Callable[Concatenate[Any, P], Pages[T]]) -> None:
        self._spec = spec
        self.__doc__ = spec.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> paged[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Blocking], owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: Resource[Awaiting], owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: Resource[AuthState] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        spec, transport = self._spec, obj._t

        def items(*args: P.args, **kwargs: P.kwargs) -> Any:
            pages = spec(obj, *args, **kwargs)
            assert isinstance(transport, Blocking | Awaiting)
            return transport.pages(pages.make, pages.key)

        _named(items, spec)
        return items
