"""Resolution: tokens -> roles -> policies -> identities, caching with TTLs, invalidation,
expiry and down_policy, with an injected clock and an in-memory lookup."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from consulpy.acl.authorizer import ManagementAuthorizer
from consulpy.acl.identities import (
    ANONYMOUS_TOKEN_ACCESSOR_ID,
    GLOBAL_MANAGEMENT_POLICY_ID,
)
from consulpy.acl.resolver import (
    ACLNotFound,
    ACLUnreachable,
    NodeIdentity,
    PolicyInfo,
    Resolver,
    RoleInfo,
    ServiceIdentity,
    TokenInfo,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeLookup:
    """An in-memory ACL store that counts calls and can pretend the servers are down."""

    def __init__(self) -> None:
        self.tokens: dict[str, TokenInfo] = {}
        self.policies: dict[str, PolicyInfo] = {}
        self.roles: dict[str, RoleInfo] = {}
        self.down = False
        self.calls = 0

    def _call(self) -> None:
        if self.down:
            raise ACLUnreachable("no servers")
        self.calls += 1

    async def token_by_secret(self, secret_id: str) -> TokenInfo | None:
        self._call()
        return self.tokens.get(secret_id)

    async def policy_by_id(self, policy_id: str) -> PolicyInfo | None:
        self._call()
        return self.policies.get(policy_id)

    async def policy_by_name(self, name: str) -> PolicyInfo | None:
        self._call()
        return next((p for p in self.policies.values() if p.name == name), None)

    async def role_by_id(self, role_id: str) -> RoleInfo | None:
        self._call()
        return self.roles.get(role_id)

    async def role_by_name(self, name: str) -> RoleInfo | None:
        self._call()
        return next((r for r in self.roles.values() if r.name == name), None)

    def add_policy(self, pid: str, rules: str, *dcs: str) -> None:
        self.policies[pid] = PolicyInfo(pid, f"p-{pid}", rules, tuple(dcs))

    def add_token(self, secret: str, **kw: object) -> TokenInfo:
        token = TokenInfo(f"acc-{secret}", secret, **kw)  # type: ignore[arg-type]
        self.tokens[secret] = token
        return token


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> FakeLookup:
    s = FakeLookup()
    s.add_policy("p-kv", 'key_prefix "app/" { policy = "write" }')
    s.add_policy("p-svc", 'service "db" { policy = "write" }')
    s.add_policy("p-dc2", 'node_prefix "" { policy = "write" }', "dc2")
    s.roles["r1"] = RoleInfo("r1", "role1", ("p-svc",), (ServiceIdentity("api"),))
    return s


def resolver(store: FakeLookup, clock: Clock, **kw: object) -> Resolver:
    opts: dict[str, object] = {"default_policy": "deny", "clock": clock, "datacenter": "dc1"}
    opts.update(kw)
    return Resolver(store, **opts)  # type: ignore[arg-type]


async def test_token_policies_roles_and_identities_are_unioned(
    store: FakeLookup, clock: Clock
) -> None:
    store.add_token(
        "s1",
        policy_ids=("p-kv", "p-dc2"),
        role_ids=("r1", "gone"),
        node_identities=(NodeIdentity("n1", "dc1"), NodeIdentity("n2", "dc2")),
        service_identities=(ServiceIdentity("web", ("dc2",)),),
    )
    got = await resolver(store, clock).resolve("s1")
    a = got.authorizer
    assert got.accessor_id == "acc-s1"
    assert a.key_write("app/x") and not a.key_read("other")
    assert a.service_write("db")  # via the role's policy
    assert a.service_write("api") and a.service_write("api-sidecar-proxy")  # role identity
    assert a.node_write("n1")  # node identity in this dc
    assert not a.node_write("n2")  # identity and policy for dc2 do not apply in dc1
    assert not a.service_write("web")  # service identity scoped to dc2


async def test_no_secret_is_the_anonymous_token(store: FakeLookup, clock: Clock) -> None:
    r = resolver(store, clock)
    got = await r.resolve(None)
    assert got.accessor_id == ANONYMOUS_TOKEN_ACCESSOR_ID
    assert not got.authorizer.key_read("a")  # no anonymous token stored: default policy
    store.tokens["anonymous"] = TokenInfo(ANONYMOUS_TOKEN_ACCESSOR_ID, "anonymous", ("p-kv",))
    r.invalidate()
    got = await r.resolve("")
    assert got.authorizer.key_read("app/a")
    assert "anonymous token lacks permission 'key:read'" in str(got.denied("key", "read", "x"))


async def test_unknown_or_expired_secret_is_acl_not_found(store: FakeLookup, clock: Clock) -> None:
    r = resolver(store, clock)
    with pytest.raises(ACLNotFound, match=r"^ACL not found$"):
        await r.resolve("nope")
    store.add_token("temp", policy_ids=("p-kv",), expiration_time=clock.now + 60)
    assert (await r.resolve("temp")).authorizer.key_write("app/a")
    clock.now += 60  # expires while cached
    with pytest.raises(ACLNotFound):
        await r.resolve("temp")


async def test_management_policy_gives_management_authorizer(
    store: FakeLookup, clock: Clock
) -> None:
    store.add_token("root", policy_ids=(GLOBAL_MANAGEMENT_POLICY_ID,))
    got = await resolver(store, clock).resolve("root")
    assert isinstance(got.authorizer, ManagementAuthorizer)
    assert got.authorizer.acl_write()


async def test_cached_within_ttl_then_refetched(store: FakeLookup, clock: Clock) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock, token_ttl=30, policy_ttl=30, role_ttl=30)
    first = await r.resolve("s1")
    calls = store.calls
    clock.now += 29
    again = await r.resolve("s1")
    assert store.calls == calls
    assert again.authorizer is first.authorizer  # compiled once
    store.policies["p-kv"] = dataclasses.replace(
        store.policies["p-kv"], rules='key_prefix "app/" { policy = "read" }', modify_index=7
    )
    assert (await r.resolve("s1")).authorizer.key_write("app/a")  # stale within the TTL
    clock.now += 2
    assert not (await r.resolve("s1")).authorizer.key_write("app/a")
    assert store.calls > calls


async def test_zero_ttl_disables_caching(store: FakeLookup, clock: Clock) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock, token_ttl=0, policy_ttl=0, role_ttl=0)
    await r.resolve("s1")
    calls = store.calls
    await r.resolve("s1")
    assert store.calls == 2 * calls


async def test_invalidate_makes_a_change_visible_at_once(store: FakeLookup, clock: Clock) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock)
    assert (await r.resolve("s1")).authorizer.key_write("app/a")
    store.add_token("s1", policy_ids=("p-svc",))
    r.invalidate(10)
    got = (await r.resolve("s1")).authorizer
    assert got.service_write("db") and not got.key_write("app/a")
    # An older notification changes nothing; a targeted one drops just that entry.
    store.add_token("s1", policy_ids=("p-kv",))
    r.invalidate(9)
    assert (await r.resolve("s1")).authorizer.service_write("db")
    r.invalidate_token("s1")
    assert (await r.resolve("s1")).authorizer.key_write("app/a")
    store.policies["p-kv"] = dataclasses.replace(store.policies["p-kv"], rules="", modify_index=3)
    r.invalidate_policy("p-kv")
    assert not (await r.resolve("s1")).authorizer.key_write("app/a")


async def test_deleted_token_is_not_found_after_invalidation(
    store: FakeLookup, clock: Clock
) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock)
    await r.resolve("s1")
    del store.tokens["s1"]
    r.invalidate()
    with pytest.raises(ACLNotFound):
        await r.resolve("s1")


@pytest.mark.parametrize("down_policy", ["allow", "deny"])
async def test_down_policy_allow_and_deny(
    store: FakeLookup, clock: Clock, down_policy: str
) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock, down_policy=down_policy)
    await r.resolve("s1")
    clock.now += 31
    store.down = True
    got = (await r.resolve("s1")).authorizer
    assert got.acl_write() == (down_policy == "allow")
    assert got.key_write("app/a") == (down_policy == "allow")


async def test_down_policy_extend_cache(store: FakeLookup, clock: Clock) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock, down_policy="extend-cache")
    await r.resolve("s1")
    clock.now += 3600
    store.down = True
    got = (await r.resolve("s1")).authorizer
    assert got.key_write("app/a") and not got.acl_read()  # stale rules, not allow-all
    assert not (await r.resolve("never-seen")).authorizer.key_read("app/a")  # nothing to extend
    store.down = False
    assert (await r.resolve("s1")).authorizer.key_write("app/a")


async def test_down_policy_async_cache_serves_stale_and_refreshes(
    store: FakeLookup, clock: Clock
) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    r = resolver(store, clock, down_policy="async-cache")
    await r.resolve("s1")
    store.add_token("s1", policy_ids=("p-svc",))
    clock.now += 31
    stale = (await r.resolve("s1")).authorizer
    assert stale.key_write("app/a")  # answered from the cache at once
    await r.wait_refreshes()
    fresh = (await r.resolve("s1")).authorizer
    assert fresh.service_write("db") and not fresh.key_write("app/a")
    # With the servers down the stale entry keeps serving.
    clock.now += 31
    store.down = True
    assert (await r.resolve("s1")).authorizer.service_write("db")
    await r.wait_refreshes()
    assert (await r.resolve("s1")).authorizer.service_write("db")


def test_bad_down_or_default_policy_is_refused(store: FakeLookup, clock: Clock) -> None:
    with pytest.raises(ValueError, match="down_policy"):
        resolver(store, clock, down_policy="maybe")
    with pytest.raises(ValueError, match="default_policy"):
        resolver(store, clock, default_policy="permit")


async def test_concurrent_resolutions_of_one_token_share_the_lookups(
    store: FakeLookup, clock: Clock
) -> None:
    store.add_token("s1", policy_ids=("p-kv",))
    gate, entered = asyncio.Event(), asyncio.Event()
    original = store.token_by_secret

    async def slow(secret: str) -> TokenInfo | None:
        entered.set()
        await gate.wait()
        return await original(secret)

    store.token_by_secret = slow  # type: ignore[method-assign]
    r = resolver(store, clock)
    tasks = [asyncio.create_task(r.resolve("s1")) for _ in range(20)]
    await entered.wait()  # the first task holds the lookup; the others were queued before us
    gate.set()
    results = await asyncio.gather(*tasks)
    assert all(res.authorizer.key_write("app/a") for res in results)
    assert store.calls == 2  # one token lookup, one policy lookup
