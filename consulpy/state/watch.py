"""Watches for blocking queries.

A read records the *topics* it depended on in a `WatchSet`; a write notifies the topics it
touched. A blocking query waits until one of its topics is notified, so a write to an
unrelated key never wakes it.

Topics are small hashable tuples:
- ``("kv", key)``      one KV key (existing or missing);
- ``("kvp", prefix)``  every key starting with ``prefix`` (recursive and keys reads);
- ``("t", table)``     a whole table (sessions, nodes, ...).
- any other tuple a table chooses (e.g. ``("svc", name)``).

The registry is plain Python with callbacks, so the store stays free of asyncio; the async
waiting lives in `consulpy.server.blocking`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

Topic = Hashable
Waiter = Callable[[], None]


class WatchSet:
    """The topics one run of a query read."""

    __slots__ = ("topics",)

    def __init__(self) -> None:
        self.topics: set[Topic] = set()

    def add(self, topic: Topic) -> None:
        self.topics.add(topic)

    def __len__(self) -> int:
        return len(self.topics)


class WatchRegistry:
    """Maps topics to the waiters of the blocking queries that read them."""

    def __init__(self) -> None:
        self._exact: dict[Topic, set[Waiter]] = {}
        # KV prefix watchers are kept apart: a write to key k must wake every prefix of k.
        self._prefixes: dict[str, set[Waiter]] = {}

    def register(self, topics: Iterable[Topic], waiter: Waiter) -> None:
        for topic in topics:
            if isinstance(topic, tuple) and topic[0] == "kvp":
                self._prefixes.setdefault(topic[1], set()).add(waiter)
            else:
                self._exact.setdefault(topic, set()).add(waiter)

    def unregister(self, topics: Iterable[Topic], waiter: Waiter) -> None:
        for topic in topics:
            if isinstance(topic, tuple) and topic[0] == "kvp":
                table, key = self._prefixes, topic[1]
            else:
                table, key = self._exact, topic
            waiters = table.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del table[key]

    def notify(self, topics: Iterable[Topic], kv_keys: Iterable[str] = ()) -> None:
        """Wake the waiters of `topics` and of every KV key in `kv_keys` (and its prefixes)."""
        fired: set[Waiter] = set()
        exact = self._exact
        for topic in topics:
            waiters = exact.get(topic)
            if waiters:
                fired.update(waiters)
        prefixes = self._prefixes
        for key in kv_keys:
            waiters = exact.get(("kv", key))
            if waiters:
                fired.update(waiters)
            if not prefixes:
                continue
            if len(prefixes) < len(key) + 1:
                for prefix, waiters in prefixes.items():
                    if key.startswith(prefix):
                        fired.update(waiters)
            else:
                for end in range(len(key) + 1):
                    waiters = prefixes.get(key[:end])
                    if waiters:
                        fired.update(waiters)
        for waiter in fired:
            waiter()

    def notify_all(self) -> None:
        """Wake everyone (after a snapshot restore replaced the whole state)."""
        fired: set[Waiter] = set()
        for waiters in self._exact.values():
            fired.update(waiters)
        for waiters in self._prefixes.values():
            fired.update(waiters)
        for waiter in fired:
            waiter()

    def count(self) -> int:
        return sum(len(w) for w in self._exact.values()) + sum(
            len(w) for w in self._prefixes.values()
        )
