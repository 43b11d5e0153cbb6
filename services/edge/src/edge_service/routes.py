"""HTTP routes compiled from ``google.api.http`` annotations; the edge has no per-RPC code."""

from __future__ import annotations

import re
from dataclasses import dataclass

from servicekit.access import HttpBinding, RpcInfo

__all__ = ["Route", "RouteTable", "compile_template"]

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]+))?\}")


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP verb + path template bound to one RPC."""

    info: RpcInfo
    binding: HttpBinding
    regex: re.Pattern[str]
    variables: tuple[str, ...]  # proto field paths, in group order

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        if not found:
            return None
        return dict(zip(self.variables, found.groups(), strict=True))


def _segment_pattern(pattern: str) -> str:
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append(r".+")
        elif segment == "*":
            parts.append(r"[^/:]+")
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """``/v1/{name=workspaces/*}:undelete`` → a regex capturing ``workspaces/…`` as field ``name``."""
    verb = ""
    body = template
    last = template.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last.split(":")[-1]:
        body, verb = template.rsplit(":", 1)
    regex, variables, position = "", [], 0
    for match in _VARIABLE.finditer(body):
        regex += re.escape(body[position : match.start()])
        variables.append(match.group(1))
        regex += "(" + _segment_pattern(match.group(2) or "*") + ")"
        position = match.end()
    regex += re.escape(body[position:])
    if verb:
        regex += re.escape(":" + verb)
    return re.compile(f"^{regex}$"), tuple(variables)


class RouteTable:
    """Every HTTP-annotated, non-internal RPC of the given services."""

    def __init__(self, infos: list[RpcInfo]) -> None:
        self.routes: list[Route] = []
        for info in infos:
            if info.rule is None or info.rule.internal_callers:
                continue  # internal RPCs are never routed, whatever their annotations say
            for binding in info.http:
                regex, variables = compile_template(binding.template)
                self.routes.append(Route(info, binding, regex, variables))
        # literal templates before variable ones, so /v1/users/me wins over /v1/{name=users/*}
        self.routes.sort(key=lambda r: (len(r.variables), -len(r.binding.template)))
        self._by_verb: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_verb.setdefault(route.binding.verb, []).append(route)

    def resolve(self, verb: str, path: str) -> tuple[Route | None, bool]:
        """The route for a request, and whether the path exists under another verb (→ 405)."""
        for route in self._by_verb.get(verb, ()):
            if route.regex.match(path):
                return route, False
        other_verb = any(r.regex.match(path) for r in self.routes if r.binding.verb != verb)
        return None, other_verb

    def allowed_verbs(self, path: str) -> list[str]:
        """The verbs routed for ``path``, for a 405's ``Allow`` header (RFC 9110 §15.5.6)."""
        verbs = {r.binding.verb for r in self.routes if r.regex.match(path)}
        return sorted(verbs | {"OPTIONS"}) if verbs else []
