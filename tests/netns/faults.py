"""Network faults between the harness's hosts: links down, nftables drops, random loss.

Every rule lives in one nftables table (`inet cpynemesis`) inside a host's own namespace, on its
input hook (a dropped packet vanishes silently, as on a real path), and
matches only eth0, so the test's HTTP calls on the host's 127.0.0.1 are never touched. A host's
table is rewritten as a whole (one atomic `nft -f` script) from what `Faults` holds for it;
`heal()` deletes every table and brings every link up. Deleting a namespace (Network.close)
takes its table with it, so a failed test leaves nothing behind either way.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.netns.harness import Host, Network

TABLE = "cpynemesis"


@dataclass
class _Rules:
    """What one host drops on arrival: packets from some peers, and a share of all."""

    deaf_to: set[str] = field(default_factory=set)
    loss: int = 0

    def empty(self) -> bool:
        return not (self.deaf_to or self.loss)


class Faults:
    """Injects and heals faults on the hosts of a Network."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._rules: dict[str, _Rules] = {}
        self._down: set[str] = set()

    # ------------------------------------------------------------------ faults
    def isolate(self, host: Host) -> None:
        """Cut the host's link to the bridge (a clean, symmetric partition)."""
        self.net.link(host, up=False)
        self._down.add(host.name)

    def partition(self, side: list[Host], other: list[Host]) -> None:
        """Drop everything between the two groups, both ways (nftables on each host)."""
        for a in side:
            for b in other:
                self.one_way(a, b)
                self.one_way(b, a)

    def one_way(self, src: Host, dst: Host) -> None:
        """Packets from src to dst are lost; dst still reaches src. Dropped on dst's input
        hook: src's sends succeed and vanish silently, as on a real lossy path (dropping on
        src's output would fail its sends with EPERM, which no real partition does)."""
        self._of(dst).deaf_to.add(src.ip)
        self._apply(dst)

    def loss(self, host: Host, percent: int) -> None:
        """Drop `percent`% of the packets the host receives on eth0, at random."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss percent out of range: {percent}")
        self._of(host).loss = percent
        self._apply(host)

    def heal(self) -> None:
        """Every link up, every table gone."""
        for name in sorted(self._down):
            self.net.link(self.net.hosts[name], up=True)
        self._down.clear()
        for name in list(self._rules):
            self._rules[name] = _Rules()
            self._apply(self.net.hosts[name])
        self._rules.clear()

    # ------------------------------------------------------------------ nftables
    def _of(self, host: Host) -> _Rules:
        return self._rules.setdefault(host.name, _Rules())

    def _apply(self, host: Host) -> None:
        rules = self._rules.get(host.name, _Rules())
        # "add" then "delete" makes the delete safe when the table does not exist yet; the
        # whole script is one transaction.
        script = [f"add table inet {TABLE}", f"delete table inet {TABLE}"]
        if not rules.empty():
            inbound = []
            if rules.deaf_to:
                inbound.append(
                    f'iifname "eth0" ip saddr {{ {", ".join(sorted(rules.deaf_to))} }} counter drop'
                )
            if rules.loss:
                inbound.append(f'iifname "eth0" numgen random mod 100 < {rules.loss} counter drop')
            script += [
                f"table inet {TABLE} {{",
                "  chain inbound {",
                "    type filter hook input priority 0; policy accept;",
                *(f"    {r}" for r in inbound),
                "  }",
                "}",
            ]
        done = subprocess.run(
            self.net.command(host, ["nft", "-f", "-"]),
            input="\n".join(script) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft in {host.ns}: {done.stderr.strip()}")

    def dropped(self, host: Host) -> int:
        """Packets the host's rules have dropped so far (their counters)."""
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", self.ruleset(host)))

    def ruleset(self, host: Host) -> str:
        """The host's nftables ruleset as nft prints it (for assertions and logs)."""
        return self.net.run(host, ["nft", "list", "ruleset"]).stdout


@dataclass
class Step:
    """One fault of a nemesis schedule, described for the report."""

    at: float
    what: str


class Nemesis:
    """Random faults drawn from a seeded generator: each `strike()` injects one kind
    (isolation by link, symmetric or one-way nftables partition, a non-transitive bridge,
    random loss), `heal()` removes all. `steps` records what was done and when."""

    KINDS = ("isolate", "partition", "one_way", "bridge", "loss")

    def __init__(
        self,
        faults: Faults,
        servers: list[Host],
        clients: list[Host],
        seed: int,
        leader: Callable[[], Host | None] = lambda: None,
    ):
        self.faults = faults
        self.servers = servers
        self.clients = clients
        self.rng = random.Random(seed)
        self.leader = leader
        self.steps: list[Step] = []

    def strike(self, at: float) -> str:
        """One fault. Half the time the server that plays the lone part of it (isolated,
        partitioned off, the lone end of a one-way cut, a bridge end) is the current leader,
        when known."""
        rng, f = self.rng, self.faults
        kind = rng.choice(self.KINDS)
        servers = self.servers[:]
        rng.shuffle(servers)
        leader = self.leader() if rng.random() < 0.5 else None
        if leader is not None:
            servers.remove(leader)
            servers.insert(0, leader)
        everyone = servers + self.clients
        if kind == "isolate":
            victim = servers[0] if leader is not None else rng.choice(everyone)
            f.isolate(victim)
            what = f"isolate {victim.name} (link down)"
        elif kind == "partition":
            minority = servers[:1]
            majority = servers[1:]
            for c in self.clients:  # the client lands on a random side
                (minority if rng.random() < 0.5 else majority).append(c)
            f.partition(minority, majority)
            what = f"partition {names(minority)} | {names(majority)}"
        elif kind == "one_way":
            lone = servers[0]
            others = servers[1:] if rng.random() < 0.5 else servers[1:2]
            if rng.random() < 0.5:  # the others stop hearing it
                for dst in others:
                    f.one_way(lone, dst)
                what = f"one-way {lone.name} -/-> {names(others)}"
            else:  # it stops hearing them (a leader then gets no acknowledgements)
                for src in others:
                    f.one_way(src, lone)
                what = f"one-way {names(others)} -/-> {lone.name}"
        elif kind == "bridge":
            a, middle, b = servers[0], servers[1], servers[2]
            f.partition([a], [b])
            what = f"bridge {a.name} | {b.name}, both see {middle.name}"
        else:
            leader = None  # loss hits every host alike
            percent = rng.choice((5, 10, 20, 30))
            for host in everyone:
                f.loss(host, percent)
            what = f"loss {percent}% on every host"
        if leader is not None:
            what += f" [leader {leader.name}]"
        self.steps.append(Step(at, what))
        return what

    def heal(self, at: float) -> None:
        self.faults.heal()
        self.steps.append(Step(at, "heal"))


def names(hosts: list[Host]) -> str:
    return ",".join(h.name for h in hosts)
