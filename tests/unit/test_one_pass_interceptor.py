"""The server runs its interceptor stages as one gRPC interceptor, in the documented order."""

from __future__ import annotations

from typing import Any

from servicekit import interceptors
from servicekit.interceptors import (
    CallerIdentityInterceptor,
    ErrorMappingInterceptor,
    OnePassInterceptor,
    RequestContextInterceptor,
    server_interceptors,
)


def test_the_server_gets_one_interceptor_with_every_stage_in_order() -> None:
    chain = server_interceptors(interceptors.default_interceptors("d", {}))
    assert len(chain) == 1
    (one,) = chain
    assert isinstance(one, OnePassInterceptor)
    kinds = [type(stage) for stage in one.stages]
    assert kinds == [type(s) for s in interceptors.default_interceptors("d", {})]
    assert kinds[-3:] == [
        RequestContextInterceptor,
        ErrorMappingInterceptor,
        CallerIdentityInterceptor,
    ]


async def test_the_stages_wrap_outermost_first() -> None:
    seen: list[str] = []

    class Stage(interceptors._Interceptor):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def around(self, method: str, behavior: Any, streaming: bool) -> Any:
            async def unary(request: Any, ctx: Any) -> Any:
                seen.append(f"{self.name}>")
                try:
                    return await behavior(request, ctx)
                finally:
                    seen.append(f"<{self.name}")

            return unary

    async def behavior(request: Any, ctx: Any) -> Any:
        seen.append("call")
        return request

    wrapped = OnePassInterceptor([Stage("a"), Stage("b"), Stage("c")]).around(
        "/x.Y/Z", behavior, False
    )
    assert await wrapped("r", None) == "r"
    assert seen == ["a>", "b>", "c>", "call", "<c", "<b", "<a"]
