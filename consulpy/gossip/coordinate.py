"""Vivaldi network coordinates, as Serf computes them (serf/coordinate).

Why here: every direct probe's ack carries the target's coordinate and the prober feeds
the measured round trip into its own; Consul's ``?near=`` sorting and ``rtt`` read the
result. Sans-I/O like the rest of the gossip core: the caller supplies RTTs and the random
source. Units are seconds. Constants are Serf's ``DefaultConfig`` (spec operability §3.2).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from consulpy.gossip import codec
from consulpy.gossip.codec import DecodeError

PING_VERSION = 1  # first byte of an ack payload that carries a coordinate
MAX_RTT = 10.0  # seconds; longer samples are refused as Serf does
_ZERO = 1.0e-6


@dataclass(frozen=True, slots=True)
class CoordinateConfig:
    """Serf's coordinate.DefaultConfig()."""

    dimensionality: int = 8
    vivaldi_error_max: float = 1.5
    vivaldi_ce: float = 0.25
    vivaldi_cc: float = 0.25
    adjustment_window_size: int = 20
    height_min: float = 10.0e-6
    latency_filter_size: int = 3
    gravity_rho: float = 150.0


@dataclass(frozen=True, slots=True)
class Coordinate:
    """A point in Vivaldi space plus a height and an adjustment (all in seconds)."""

    vec: tuple[float, ...]
    error: float
    adjustment: float
    height: float

    @classmethod
    def new(cls, config: CoordinateConfig | None = None) -> Coordinate:
        c = config or CoordinateConfig()
        return cls((0.0,) * c.dimensionality, c.vivaldi_error_max, 0.0, c.height_min)

    def is_valid(self) -> bool:
        return all(math.isfinite(x) for x in (*self.vec, self.error, self.adjustment, self.height))

    def is_compatible_with(self, other: Coordinate) -> bool:
        return len(self.vec) == len(other.vec)

    def raw_distance(self, other: Coordinate) -> float:
        return _magnitude(_diff(self.vec, other.vec)) + self.height + other.height

    def distance(self, other: Coordinate) -> float:
        """Estimated RTT in seconds (Serf's DistanceTo, before its nanosecond truncation)."""
        raw = self.raw_distance(other)
        adjusted = raw + self.adjustment + other.adjustment
        return adjusted if adjusted > 0.0 else raw

    # ---------------------------------------------------------------- wire forms

    def to_api(self) -> dict[str, Any]:
        """Consul's JSON shape (``Vec``, ``Error``, ``Adjustment``, ``Height``)."""
        return {
            "Vec": list(self.vec),
            "Error": self.error,
            "Adjustment": self.adjustment,
            "Height": self.height,
        }

    @classmethod
    def from_api(cls, obj: Any) -> Coordinate:
        """Parse Consul's JSON/msgpack map shape; ValueError says what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("coordinate must be an object")
        norm = {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
        vec = norm.get("Vec")
        if vec is None:
            vec = []
        if not isinstance(vec, list | tuple):
            raise ValueError("Vec must be an array of numbers")
        nums = []
        for name in ("Error", "Adjustment", "Height"):
            nums.append(_num(norm.get(name, 0.0), name))
        return cls(tuple(_num(x, "Vec") for x in vec), nums[0], nums[1], nums[2])

    def encode(self) -> bytes:
        """go-msgpack encoding of serf's ``coordinate.Coordinate`` (keys sorted, as Go wrote)."""
        return codec.pack(
            {
                b"Adjustment": float(self.adjustment),
                b"Error": float(self.error),
                b"Height": float(self.height),
                b"Vec": [float(x) for x in self.vec],
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Coordinate:
        try:
            return cls.from_api(codec.unpack(data))
        except ValueError as exc:
            raise DecodeError(f"coordinate: {exc}") from exc


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{name} must be a number")
    return float(v)


def _diff(a: tuple[float, ...], b: tuple[float, ...]) -> list[float]:
    return [x - y for x, y in zip(a, b, strict=True)]


def _magnitude(v: list[float] | tuple[float, ...]) -> float:
    return math.sqrt(sum(x * x for x in v))


def ack_payload(coord: Coordinate) -> bytes:
    """What a Serf node puts in its ping acks: ``[1][msgpack coordinate]``."""
    return bytes([PING_VERSION]) + coord.encode()


def parse_ack_payload(payload: bytes) -> Coordinate | None:
    """The coordinate in an ack payload; None when empty. DecodeError on another version."""
    if not payload:
        return None
    if payload[0] != PING_VERSION:
        raise DecodeError(f"unsupported ping version: {payload[0]}")
    return Coordinate.decode(bytes(payload[1:]))


@dataclass(slots=True)
class CoordinateStats:
    resets: int = 0
    rejected: int = 0
    zero_rtt: int = 0


@dataclass
class CoordinateClient:
    """Our own coordinate, updated from (peer, peer's coordinate, RTT) samples."""

    config: CoordinateConfig = field(default_factory=CoordinateConfig)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.coord = Coordinate.new(self.config)
        self.origin = Coordinate.new(self.config)
        self._adjustment_samples = [0.0] * self.config.adjustment_window_size
        self._adjustment_index = 0
        self._latency: dict[str, list[float]] = {}
        self.stats = CoordinateStats()

    def forget(self, node: str) -> None:
        """Drop a departed node's latency samples."""
        self._latency.pop(node, None)

    def update(self, node: str, other: Coordinate, rtt: float) -> Coordinate:
        """Fold one sample in and return our new coordinate; ValueError if refused."""
        if not self.coord.is_compatible_with(other):
            raise ValueError("dimensions aren't compatible")
        if not other.is_valid():
            raise ValueError("coordinate is invalid")
        if not (0.0 <= rtt <= MAX_RTT):
            raise ValueError(
                f"round trip time not in valid range, duration {rtt}s is not a positive "
                f"value less than {MAX_RTT}s"
            )
        if rtt == 0.0:
            self.stats.zero_rtt += 1
        rtt = self._latency_filter(node, rtt)
        self._update_vivaldi(other, rtt)
        self._update_adjustment(other, rtt)
        self._update_gravity()
        if not self.coord.is_valid():
            self.stats.resets += 1
            self.coord = Coordinate.new(self.config)
        return self.coord

    def _latency_filter(self, node: str, rtt: float) -> float:
        samples = self._latency.setdefault(node, [])
        samples.append(rtt)
        if len(samples) > self.config.latency_filter_size:
            del samples[0]
        return sorted(samples)[len(samples) // 2]

    def _update_vivaldi(self, other: Coordinate, rtt: float) -> None:
        cfg = self.config
        dist = self.coord.distance(other)
        rtt = max(rtt, _ZERO)
        wrongness = abs(dist - rtt) / rtt
        total = max(self.coord.error + other.error, _ZERO)
        weight = self.coord.error / total
        error = cfg.vivaldi_ce * weight * wrongness + self.coord.error * (
            1.0 - cfg.vivaldi_ce * weight
        )
        c = self.coord
        self.coord = Coordinate(c.vec, min(error, cfg.vivaldi_error_max), c.adjustment, c.height)
        force = cfg.vivaldi_cc * weight * (rtt - dist)
        self.coord = self._apply_force(self.coord, force, other)

    def _update_adjustment(self, other: Coordinate, rtt: float) -> None:
        n = self.config.adjustment_window_size
        if n == 0:
            return
        self._adjustment_samples[self._adjustment_index] = rtt - self.coord.raw_distance(other)
        self._adjustment_index = (self._adjustment_index + 1) % n
        c = self.coord
        adj = sum(self._adjustment_samples) / (2.0 * n)
        self.coord = Coordinate(c.vec, c.error, adj, c.height)

    def _update_gravity(self) -> None:
        dist = self.origin.distance(self.coord)
        force = -((dist / self.config.gravity_rho) ** 2)
        self.coord = self._apply_force(self.coord, force, self.origin)

    def _apply_force(self, c: Coordinate, force: float, other: Coordinate) -> Coordinate:
        unit, mag = self._unit_vector_at(c.vec, other.vec)
        vec = tuple(x + u * force for x, u in zip(c.vec, unit, strict=True))
        height = c.height
        if mag > _ZERO:
            height = max((c.height + other.height) * force / mag + c.height, self.config.height_min)
        return Coordinate(vec, c.error, c.adjustment, height)

    def _unit_vector_at(
        self, a: tuple[float, ...], b: tuple[float, ...]
    ) -> tuple[list[float], float]:
        d = _diff(a, b)
        mag = _magnitude(d)
        if mag > _ZERO:
            return [x / mag for x in d], mag
        d = [self.rng.random() - 0.5 for _ in d]
        mag = _magnitude(d)
        if mag > _ZERO:
            return [x / mag for x in d], 0.0
        unit = [0.0] * len(d)
        unit[0] = 1.0
        return unit, 0.0
