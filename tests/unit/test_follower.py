"""servicekit.follower.KeptEntries: the rules every cache of pushed state keeps."""

from __future__ import annotations

from servicekit.follower import KeptEntries


def _kept(live: list[bool], max_entries: int = 10) -> KeptEntries[str, tuple[str, int]]:
    # a value is (group, payload); entries are grouped by the value's first item
    return KeptEntries(lambda: live[0], lambda _key, value: value[0], max_entries=max_entries)


async def _ask(value: tuple[str, int] | None) -> tuple[str, int] | None:
    return value


async def test_an_answer_is_kept_while_live_and_used_only_while_live() -> None:
    live = [True]
    kept = _kept(live)
    assert await kept.through("a", lambda: _ask(("g", 1))) == ("g", 1)
    assert kept.get("a") == ("g", 1) and kept.hits == 1
    live[0] = False
    assert kept.get("a") is None  # held, but never answered without a live follower
    assert kept.peek("a") == ("g", 1)
    assert await kept.through("b", lambda: _ask(("g", 2))) == ("g", 2)
    assert kept.peek("b") is None  # asked while not live: not kept


async def test_none_is_never_kept() -> None:
    kept = _kept([True])
    assert await kept.through("a", lambda: _ask(None)) is None
    assert len(kept) == 0 and kept.misses == 1


async def test_groups_and_scans_drop_what_they_name() -> None:
    kept = _kept([True])
    for key, value in {"a": ("g1", 1), "b": ("g1", 2), "c": ("g2", 3)}.items():
        kept.put(key, value)
    kept.drop_group("g1")
    assert (kept.peek("a"), kept.peek("b"), kept.peek("c")) == (None, None, ("g2", 3))
    kept.put("d", ("g3", 4))
    kept.drop_where(lambda value: value[1] > 3)
    assert kept.peek("d") is None and kept.peek("c") == ("g2", 3)
    generation = kept.generation
    kept.drop("c")
    assert len(kept) == 0 and kept.generation == generation + 1


async def test_a_refresh_replaces_a_kept_value_of_the_same_group_only() -> None:
    kept = _kept([True])
    kept.put("a", ("g", 1))
    generation = kept.generation
    kept.refresh("a", ("g", 2))
    assert kept.peek("a") == ("g", 2) and kept.generation == generation  # not an invalidation
    kept.refresh("a", ("other", 3))  # would move it out of its group's index: refused
    kept.refresh("missing", ("g", 4))  # not kept: nothing to refresh
    assert kept.peek("a") == ("g", 2) and kept.peek("missing") is None
    kept.drop_group("g")
    assert len(kept) == 0


async def test_the_bound_evicts_the_least_recently_used_and_its_index_entry() -> None:
    kept = _kept([True], max_entries=2)
    kept.put("a", ("ga", 1))
    kept.put("b", ("gb", 2))
    kept.get("a")
    kept.put("c", ("gc", 3))  # b was the least recently used
    assert kept.peek("b") is None and len(kept) == 2
    kept.drop_group("gb")  # its index entry went with it
    assert len(kept) == 2
    none = _kept([True], max_entries=0)
    none.put("a", ("g", 1))
    assert len(none) == 0


async def test_a_value_put_again_under_another_group_is_indexed_under_the_new_one_only() -> None:
    kept = _kept([True])
    kept.put("a", ("old", 1))
    kept.put("a", ("new", 2))
    kept.drop_group("old")  # the entry left that group: it stays
    assert kept.peek("a") == ("new", 2)
    kept.drop_group("new")
    assert kept.peek("a") is None
