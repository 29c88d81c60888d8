"""Per-kind normalization and validation with Consul's texts, and `normalize()`, the one
entry point that turns a body into the canonical entry to store."""

from __future__ import annotations

import ipaddress
import math
import re
import struct as _binary
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consulpy.connect.config_entries.decode import (
    _Obj,
    decode,
)
from consulpy.connect.config_entries.kinds import (
    DEFAULT_NAMESPACE,
    HTTP_METHODS,
    INGRESS_GATEWAY,
    MESH,
    META_KEY_MAX,
    META_MAX_PAIRS,
    META_VALUE_MAX,
    PROXY_DEFAULTS,
    SERVICE_DEFAULTS,
    SERVICE_INTENTIONS,
    SERVICE_RESOLVER,
    SERVICE_ROUTER,
    SERVICE_SPLITTER,
    TERMINATING_GATEWAY,
    WILDCARD,
    EntryError,
    _go_kind,
    is_http_like,
    multierror,
)
from consulpy.connect.config_entries.schemas import (
    INGRESS_GATEWAY_SCHEMA,
    MESH_SCHEMA,
    PROXY_DEFAULTS_SCHEMA,
    SERVICE_DEFAULTS_SCHEMA,
    SERVICE_INTENTIONS_SCHEMA,
    SERVICE_RESOLVER_SCHEMA,
    SERVICE_ROUTER_SCHEMA,
    SERVICE_SPLITTER_SCHEMA,
    TERMINATING_GATEWAY_SCHEMA,
)
from consulpy.filter import FilterError, compile_filter
from consulpy.filter.regex import RegexError, compile_regex
from consulpy.util.durations import format_duration_ns
from consulpy.util.goquote import go_quote
from consulpy.util.tlsnames import (
    CIPHER_SUITE_MIN_VERSIONS,
    ENVOY_CIPHER_SUITES,
    ENVOY_TLS_VERSIONS,
)

# --------------------------------------------------------------------------------------------
# Shared validation helpers.


def validate_meta(meta: Mapping[str, str] | None, prefix: str = "") -> list[str]:
    """Consul's limits on user metadata, as a list of error texts."""
    errors: list[str] = []
    meta = meta or {}
    if len(meta) > META_MAX_PAIRS:
        errors.append(f"{prefix}Meta exceeds maximum element count {META_MAX_PAIRS}")
    for key, value in meta.items():
        if len(key) > META_KEY_MAX:
            errors.append(f"{prefix}Meta key {go_quote(key)} exceeds maximum length {META_KEY_MAX}")
        if len(value) > META_VALUE_MAX:
            errors.append(
                f"{prefix}Meta value for key {go_quote(key)} exceeds maximum length "
                f"{META_VALUE_MAX}"
            )
    return errors


def _check_meta(entry: Mapping[str, Any]) -> None:
    errors = validate_meta(entry.get("Meta"))
    if errors:
        raise EntryError(multierror(errors))


def _require_name(entry: Mapping[str, Any]) -> None:
    if not entry.get("Name"):
        raise EntryError("Name is required")


# --------------------------------------------------------------------------------------------
# proxy-defaults, service-defaults, mesh


def _fixed_name(entry: dict[str, Any], name: str) -> None:
    given = entry.get("Name", "")
    if given and given != name:
        raise EntryError(f"invalid name ({go_quote(given)}), only {go_quote(name)} is supported")
    entry["Name"] = name


def _normalize_proxy_defaults(entry: dict[str, Any]) -> None:
    _fixed_name(entry, "global")


def _validate_proxy_defaults(entry: dict[str, Any]) -> None:
    _check_meta(entry)


def _normalize_mesh(entry: dict[str, Any]) -> None:
    _fixed_name(entry, "mesh")


def _validate_mesh(entry: dict[str, Any]) -> None:
    _check_meta(entry)


def _normalize_upstream(cfg: dict[str, Any]) -> None:
    if "Protocol" in cfg:
        cfg["Protocol"] = cfg["Protocol"].lower()
    if cfg.get("ConnectTimeoutMs", 0) < 0:
        cfg["ConnectTimeoutMs"] = 0


def _normalize_service_defaults(entry: dict[str, Any]) -> None:
    entry["Protocol"] = entry.get("Protocol", "").lower()
    upstream = entry.get("UpstreamConfig") or {}
    for override in upstream.get("Overrides") or []:
        _normalize_upstream(override)
    if upstream.get("Defaults") is not None:
        _normalize_upstream(upstream["Defaults"])


def _upstream_errors(cfg: Mapping[str, Any], *, named: bool) -> list[str]:
    if named:
        if not cfg.get("Name"):
            return ["Name is required"]
        if cfg["Name"] == WILDCARD:
            return ["Wildcard name is not supported"]
    elif cfg.get("Name"):
        return ["Name must be empty"]
    errors: list[str] = []
    phc = cfg.get("PassiveHealthCheck") or {}
    if phc.get("Interval", 0) < 0:
        errors.append("passive health check interval cannot be negative")
    limits = cfg.get("Limits") or {}
    for key, text in (
        ("MaxConnections", "max connections"),
        ("MaxPendingRequests", "max pending requests"),
        ("MaxConcurrentRequests", "max concurrent requests"),
    ):
        if limits.get(key, 0) < 0:
            errors.append(f"{text} cannot be negative")
            break
    balance = cfg.get("BalanceOutboundConnections", "")
    if balance not in ("", "exact_balance"):
        errors.append(f"invalid value for balance_outbound_connections: {balance}")
    return errors


_DNS_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def _is_domain_name(name: str) -> bool:
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > 253:
        return False
    return all(_DNS_LABEL.match(label) for label in name.split("."))


def _validate_service_defaults(entry: dict[str, Any]) -> None:
    _require_name(entry)
    if entry["Name"] == WILDCARD:
        raise EntryError("service-defaults name must be the name of a service, and not a wildcard")
    errors = validate_meta(entry.get("Meta"))
    balance = entry.get("BalanceInboundConnections", "")
    if balance not in ("", "exact_balance"):
        errors.append(f"invalid value for balance_inbound_connections: {balance}")
    upstream = entry.get("UpstreamConfig")
    destination = entry.get("Destination")
    if upstream is not None and destination is not None:
        errors.append("UpstreamConfig and Destination are mutually exclusive for service defaults")
        raise EntryError(multierror(errors))
    if upstream is not None:
        for override in upstream.get("Overrides") or []:
            errors.extend(
                f"error in upstream override for {override.get('Name', '')}: {e}"
                for e in _upstream_errors(override, named=True)
            )
        if upstream.get("Defaults") is not None:
            errors.extend(
                f"error in upstream defaults: {e}"
                for e in _upstream_errors(upstream["Defaults"], named=False)
            )
    if destination is not None:
        addresses = destination.get("Addresses") or []
        if not addresses:
            errors.append("Destination must contain at least one valid address")
        seen: set[str] = set()
        for address in addresses:
            if address in seen:
                errors.append(f"Duplicate address '{address}' is not allowed")
                continue
            seen.add(address)
            try:
                ipaddress.ip_address(address)
            except ValueError:
                if "*" in address or not _is_domain_name(address):
                    errors.append(
                        f"Destination address '{address}' is invalid Could not validate "
                        f"address {address} as an IP or Hostname"
                    )
        port = destination.get("Port", 0)
        if not 1 <= port <= 65535:
            errors.append(f"Invalid Port number {port}")
    if errors:
        raise EntryError(multierror(errors))


# --------------------------------------------------------------------------------------------
# service-intentions (the intentions API in intentions.py is a view over these entries)


def intention_count_exact(namespace: str, name: str) -> int:
    """How many of (namespace, name) are exact: `*/*` -> 0, `ns/*` -> 1, `ns/name` -> 2."""
    if namespace == WILDCARD:
        return 0
    if name == WILDCARD:
        return 1
    return 2


def intention_precedence(
    source_name: str,
    dest_name: str,
    source_ns: str = DEFAULT_NAMESPACE,
    dest_ns: str = DEFAULT_NAMESPACE,
) -> int:
    """Consul's precedence: 9 for exact -> exact down to 1 for */* -> */*. The destination
    picks the band (9, 6, 3), each wildcard on the source side costs one."""
    band = {2: 9, 1: 6, 0: 3}[intention_count_exact(dest_ns, dest_name)]
    return band - (2 - intention_count_exact(source_ns, source_name))


def wildcard_error(name: str, namespace: str = DEFAULT_NAMESPACE) -> str | None:
    """Consul's rule for `*`: only a whole value, and no exact name after a wildcard
    namespace. Returns the error text (without a field prefix) or None."""
    if namespace != WILDCARD and WILDCARD in namespace:
        return "Namespace: wildcard character '*' cannot be used with partial values"
    if name != WILDCARD:
        if WILDCARD in name:
            return "Name: wildcard character '*' cannot be used with partial values"
        if namespace == WILDCARD:
            return "Name: exact value cannot follow wildcard namespace"
    return None


def normalize_intention_source(src: dict[str, Any], destination: str, *, legacy: bool) -> None:
    """One decoded Sources[] element, normalized in place the way Consul saves it."""
    if not src.get("Type"):
        src["Type"] = "consul"
    src["Precedence"] = intention_precedence(src.get("Name", ""), destination)
    if not legacy:
        # Legacy fields are cleared, except LegacyMeta, which validation refuses so that a
        # user does not silently lose it.
        for key in ("LegacyID", "LegacyCreateTime", "LegacyUpdateTime"):
            src.pop(key, None)
    for perm in src.get("Permissions") or []:
        http = perm.get("HTTP")
        if http and http.get("Methods"):
            http["Methods"] = [m.upper() for m in http["Methods"]]


def _regex_error(pattern: str) -> str | None:
    try:
        compile_regex(pattern)
    except RegexError as err:
        return str(err)
    return None


def validate_intention_source(
    i: int, src: Mapping[str, Any], *, dest_is_wild: bool, legacy: bool
) -> None:
    """Consul's checks on Sources[i] (everything but the duplicate-name rule)."""
    name = src.get("Name", "")
    if not name:
        raise EntryError(f"Sources[{i}].Name is required")
    if src.get("SamenessGroup"):
        raise EntryError(
            f"Sources[{i}].SamenessGroup: Sameness groups are a Consul Enterprise feature. "
        )
    problem = wildcard_error(name)
    if problem is None and WILDCARD in src.get("Peer", ""):
        problem = "Peer: cannot use wildcard '*' in peer"
    if problem is not None:
        raise EntryError(f"Sources[{i}].{problem}")
    if len(src.get("Description", "")) > META_VALUE_MAX:
        raise EntryError(f"Sources[{i}].Description exceeds maximum length {META_VALUE_MAX}")
    if legacy:
        if src.get("Peer"):
            raise EntryError(f"Sources[{i}].Peer cannot be set by legacy intentions")
        errors = validate_meta(src.get("LegacyMeta"), prefix=f"Sources[{i}].")
        if errors:
            raise EntryError(errors[0])
        if not src.get("LegacyCreateTime"):
            raise EntryError(f"Sources[{i}].LegacyCreateTime must be set")
        if not src.get("LegacyUpdateTime"):
            raise EntryError(f"Sources[{i}].LegacyUpdateTime must be set")
        if not src.get("LegacyID"):
            raise EntryError(f"Sources[{i}].LegacyID must be set")
    else:
        if src.get("LegacyMeta"):
            raise EntryError(f"Sources[{i}].LegacyMeta must be omitted")
        for key in ("LegacyCreateTime", "LegacyUpdateTime", "LegacyID"):
            if src.get(key):
                raise EntryError(f"Sources[{i}].{key} must be omitted")
    permissions = src.get("Permissions") or []
    action = src.get("Action", "")
    if (legacy or not permissions) and action not in ("allow", "deny"):
        raise EntryError(f"Sources[{i}].Action must be set to 'allow' or 'deny'")
    if permissions and action:
        raise EntryError(f"Sources[{i}].Action must be omitted if Permissions are specified")
    if dest_is_wild and permissions:
        raise EntryError(
            f"Sources[{i}].Permissions cannot be specified on intentions with wildcarded "
            "destinations"
        )
    if src.get("Type") != "consul":
        raise EntryError(f"Sources[{i}].Type must be set to 'consul'")
    for j, perm in enumerate(permissions):
        _validate_permission(i, j, perm)


def _validate_permission(i: int, j: int, perm: Mapping[str, Any]) -> None:
    if perm.get("Action") not in ("allow", "deny"):
        raise EntryError(f"Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'")
    prefix = f"Sources[{i}].Permissions[{j}].HTTP"
    http = perm.get("HTTP")
    if http is None:
        raise EntryError(f"{prefix} is required")
    parts = 0
    for key in ("PathExact", "PathPrefix"):
        value = http.get(key, "")
        if value:
            parts += 1
            if not value.startswith("/"):
                raise EntryError(f"{prefix}.{key} doesn't start with '/': {go_quote(value)}")
    if http.get("PathRegex"):
        parts += 1
        problem = _regex_error(http["PathRegex"])
        if problem is not None:
            raise EntryError(f"{prefix}.PathRegex is not a valid regular expression: {problem}")
    if parts > 1:
        raise EntryError(
            f"{prefix} should only contain at most one of PathExact, PathPrefix, or PathRegex"
        )
    for k, header in enumerate(http.get("Header") or []):
        if not header.get("Name"):
            raise EntryError(f"{prefix}.Header[{k}] missing required Name field")
        matchers = sum(
            1 for key in ("Present", "Exact", "Regex", "Prefix", "Suffix") if header.get(key)
        )
        if matchers != 1:
            raise EntryError(
                f"{prefix}.Header[{k}] should only contain one of Present, Exact, Prefix, "
                "Suffix, or Regex"
            )
        if header.get("Regex"):
            problem = _regex_error(header["Regex"])
            if problem is not None:
                raise EntryError(
                    f"{prefix}.Header[{k}].Regex is not a valid regular expression: {problem}"
                )
        parts += 1
    methods = http.get("Methods") or []
    seen: set[str] = set()
    for method in methods:
        if method not in HTTP_METHODS:
            raise EntryError(f"{prefix}.Methods contains an invalid method {go_quote(method)}")
        if method in seen:
            raise EntryError(f"{prefix}.Methods contains {go_quote(method)} more than once")
        seen.add(method)
    if methods:
        parts += 1
    if parts == 0:
        raise EntryError(f"{prefix} should not be empty")
    _validate_jwt(perm.get("JWT"))


def _validate_jwt(jwt: Mapping[str, Any] | None) -> None:
    for provider in (jwt or {}).get("Providers") or []:
        if not provider.get("Name"):
            raise EntryError("JWT provider name is required")


def _normalize_service_intentions(entry: dict[str, Any], *, legacy: bool = False) -> None:
    sources = entry.get("Sources") or []
    for src in sources:
        normalize_intention_source(src, entry.get("Name", ""), legacy=legacy)
    # Index 0 holds the highest precedence; the sort is stable, so ties keep their order.
    sources.sort(key=lambda s: -s["Precedence"])
    entry["Sources"] = sources


def _validate_service_intentions(entry: dict[str, Any], *, legacy: bool = False) -> None:
    name = entry.get("Name", "")
    if not name:
        raise EntryError("Name is required")
    problem = wildcard_error(name)
    if problem is not None:
        raise EntryError(problem)
    _validate_jwt(entry.get("JWT"))
    if legacy:
        if entry.get("Meta"):
            raise EntryError("Meta must be omitted for legacy intention writes")
    else:
        _check_meta(entry)
    sources = entry.get("Sources") or []
    if not sources:
        raise EntryError("At least one source is required")
    seen: set[tuple[str, str]] = set()
    for i, src in enumerate(sources):
        validate_intention_source(i, src, dest_is_wild=name == WILDCARD, legacy=legacy)
        key = (src.get("Peer", ""), src["Name"])
        if key in seen:
            if key[0]:
                raise EntryError(
                    f"Sources[{i}] defines peer({go_quote(key[0])}) {go_quote(key[1])} more "
                    "than once"
                )
            raise EntryError(f"Sources[{i}] defines {go_quote(key[1])} more than once")
        seen.add(key)


def normalize_intentions(entry: Mapping[str, Any], *, legacy: bool = False) -> dict[str, Any]:
    """Re-validate a service-intentions entry built by the intentions API (a canonical entry
    with sources added or replaced). `legacy` selects the rules of the legacy ID-based API
    (IDs and timestamps required, entry Meta refused) instead of the config-entry rules."""
    decoded = decode(SERVICE_INTENTIONS_SCHEMA, entry)
    decoded["Kind"] = SERVICE_INTENTIONS
    _normalize_service_intentions(decoded, legacy=legacy)
    _validate_service_intentions(decoded, legacy=legacy)
    return SERVICE_INTENTIONS_SCHEMA.emit(decoded)


# --------------------------------------------------------------------------------------------
# service-router, service-splitter, service-resolver

_RETRY_CONDITIONS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)


def _normalize_router(entry: dict[str, Any]) -> None:
    for route in entry.get("Routes") or []:
        http = (route.get("Match") or {}).get("HTTP")
        if http and http.get("Methods"):
            http["Methods"] = [m.upper() for m in http["Methods"]]


def _validate_router(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    for i, route in enumerate(entry.get("Routes") or []):
        eligible_for_rewrite = False
        http = (route.get("Match") or {}).get("HTTP")
        if http is not None:
            parts = 0
            for key in ("PathExact", "PathPrefix"):
                value = http.get(key, "")
                if value:
                    eligible_for_rewrite = True
                    parts += 1
                    if not value.startswith("/"):
                        raise EntryError(
                            f"Route[{i}] {key} doesn't start with '/': {go_quote(value)}"
                        )
            if http.get("PathRegex"):
                parts += 1
            if parts > 1:
                raise EntryError(
                    f"Route[{i}] should only contain at most one of PathExact, PathPrefix, "
                    "or PathRegex"
                )
            for j, header in enumerate(http.get("Header") or []):
                if not header.get("Name"):
                    raise EntryError(f"Route[{i}] Header[{j}] missing required Name field")
                count = sum(
                    1 for k in ("Present", "Exact", "Regex", "Prefix", "Suffix") if header.get(k)
                )
                if count != 1:
                    raise EntryError(
                        f"Route[{i}] Header[{j}] should only contain one of Present, Exact, "
                        "Prefix, Suffix, or Regex"
                    )
            for j, param in enumerate(http.get("QueryParam") or []):
                if not param.get("Name"):
                    raise EntryError(f"Route[{i}] QueryParam[{j}] missing required Name field")
                count = sum(1 for k in ("Present", "Exact", "Regex") if param.get(k))
                if count != 1:
                    raise EntryError(
                        f"Route[{i}] QueryParam[{j}] should only contain one of Present, "
                        "Exact, or Regex"
                    )
            seen: set[str] = set()
            for method in http.get("Methods") or []:
                if method not in HTTP_METHODS:
                    raise EntryError(
                        f"Route[{i}] Methods contains an invalid method {go_quote(method)}"
                    )
                if method in seen:
                    raise EntryError(
                        f"Route[{i}] Methods contains {go_quote(method)} more than once"
                    )
                seen.add(method)
        destination = route.get("Destination")
        if destination is not None:
            if destination.get("PrefixRewrite") and not eligible_for_rewrite:
                raise EntryError(
                    f"Route[{i}] cannot make use of PrefixRewrite without configuring either "
                    "PathExact or PathPrefix"
                )
            for cond in destination.get("RetryOn") or []:
                if cond not in _RETRY_CONDITIONS:
                    raise EntryError(
                        f"Route[{i}] contains an invalid retry condition: {go_quote(cond)}"
                    )


def _f32(value: float) -> float:
    """Round to float32, as Consul stores split weights."""
    if not math.isfinite(value) or abs(value) > 3.4e38:
        return value
    return _binary.unpack("f", _binary.pack("f", value))[0]


def scale_weight(weight: float) -> int:
    """A weight in hundredths of a percent (Envoy's unit), rounded half away from zero."""
    scaled = _f32(_f32(weight) * 100.0)
    if not math.isfinite(scaled):
        return 0 if math.isnan(scaled) else (1 << 62)
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))


def _normalize_splitter(entry: dict[str, Any]) -> None:
    for split in entry.get("Splits") or []:
        split["Weight"] = scale_weight(split.get("Weight", 0.0)) / 100


def _validate_splitter(entry: dict[str, Any]) -> None:
    _require_name(entry)
    splits = entry.get("Splits") or []
    if not splits:
        raise EntryError("no splits configured")
    _check_meta(entry)
    found: set[tuple[Any, ...]] = set()
    for split in splits:
        key: tuple[Any, ...] = (
            split.get("Service") or entry["Name"],
            split.get("ServiceSubset", ""),
            split.get("Namespace", ""),
            split.get("Partition", ""),
        )
        if split.get("RequestHeaders") is not None or split.get("ResponseHeaders") is not None:
            key = (*key, id(split))  # Go compares the header pointers: never equal
        if key in found:
            raise EntryError(
                "split destination occurs more than once: service="
                f"{go_quote(key[0])}, subset={go_quote(key[1])}, namespace={go_quote(key[2])}, "
                f"partition={go_quote(key[3])}"
            )
        found.add(key)
    total = sum(scale_weight(split.get("Weight", 0.0)) for split in splits)
    if total != 100 * 100:
        raise EntryError(f"the sum of all split weights must be 100, not {_f32(total / 100):f}")


_SUBSET_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LB_POLICIES = frozenset({"", "random", "round_robin", "least_request", "ring_hash", "maglev"})
_HASH_FIELDS = frozenset({"header", "cookie", "query_parameter"})


def _subset_name_error(name: str) -> str | None:
    if not name or len(name) > 63:
        return "must be non-empty and 63 characters or fewer"
    if not _SUBSET_NAME.match(name):
        return (
            "must be 63 characters or fewer, begin or end with lower case alphanumeric "
            "characters, and contain lower case alphanumeric characters or '-' in between"
        )
    return None


def _enterprise_target_error(target: Mapping[str, Any]) -> str | None:
    if target.get("Partition"):
        return "Setting Partition requires Consul Enterprise"
    if target.get("Namespace"):
        return "Setting Namespace requires Consul Enterprise"
    return None


def _validate_resolver(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    name = entry["Name"]
    subsets: dict[str, Any] = entry.get("Subsets") or {}
    for subset_name, subset in subsets.items():
        if subset_name == "":
            raise EntryError("Subset defined with empty name")
        problem = _subset_name_error(subset_name)
        if problem is not None:
            raise EntryError(f"Subset {go_quote(subset_name)} is invalid: {problem}")
        if subset.get("Filter"):
            try:
                compile_filter(subset["Filter"])
            except FilterError as err:
                raise EntryError(
                    f"Filter for subset {go_quote(subset_name)} is not a valid expression: {err}"
                ) from None
    default_subset = entry.get("DefaultSubset", "")
    if default_subset and default_subset not in subsets:
        raise EntryError(f"DefaultSubset {go_quote(default_subset)} is not a valid subset")

    redirect = entry.get("Redirect")
    failover: dict[str, Any] = entry.get("Failover") or {}
    if redirect is not None:
        if redirect.get("Partition", "default") not in ("", "default") and redirect.get(
            "Datacenter"
        ):
            raise EntryError("Cross-datacenter and cross-partition redirect is not supported")
        problem = _enterprise_target_error(redirect)
        if problem is not None:
            raise EntryError(f"Redirect: {problem}")
        if failover:
            raise EntryError("Redirect and Failover cannot both be set")
        if not any(redirect.get(k) for k in ("Service", "ServiceSubset", "Datacenter", "Peer")):
            raise EntryError("Redirect is empty")
        service, subset, peer = (
            redirect.get("Service", ""),
            redirect.get("ServiceSubset", ""),
            redirect.get("Peer", ""),
        )
        if peer and subset:
            raise EntryError("Redirect.Peer cannot be set with Redirect.ServiceSubset")
        if peer and redirect.get("Datacenter"):
            raise EntryError("Redirect.Peer cannot be set with Redirect.Datacenter")
        if not service:
            if subset:
                raise EntryError("Redirect.ServiceSubset defined without Redirect.Service")
            if peer:
                raise EntryError("Redirect.Peer defined without Redirect.Service")
        elif subset and service == name and subset not in subsets:
            raise EntryError(
                f"Redirect.ServiceSubset {go_quote(subset)} is not a valid subset of "
                f"{go_quote(name)}"
            )

    for subset_key, fo in failover.items():
        prefix = f"Bad Failover[{go_quote(subset_key)}]: "
        problem = _enterprise_target_error(fo)
        if problem is not None:
            raise EntryError(prefix + problem)
        if subset_key != WILDCARD and subset_key not in subsets:
            raise EntryError(prefix + "not a valid subset subset")
        targets = fo.get("Targets") or []
        datacenters = fo.get("Datacenters") or []
        if not any((fo.get("Service"), fo.get("ServiceSubset"), datacenters, targets)):
            raise EntryError(
                prefix
                + "one of Service, ServiceSubset, Namespace, Targets, or Datacenters is required"
            )
        mode = (fo.get("Policy") or {}).get("Mode", "")
        if mode not in ("", "default", "order-by-locality"):
            raise EntryError(prefix + "Policy must be one of '', 'default', or 'order-by-locality'")
        fo_service, fo_subset = fo.get("Service", ""), fo.get("ServiceSubset", "")
        if fo_subset and fo_service in ("", name) and fo_subset not in subsets:
            raise EntryError(
                f"{prefix}ServiceSubset {go_quote(fo_subset)} is not a valid subset of "
                f"{go_quote(fo_service)}"
            )
        if datacenters and targets:
            raise EntryError(prefix + "Targets cannot be set with Datacenters")
        if fo_subset and targets:
            raise EntryError(prefix + "Targets cannot be set with ServiceSubset")
        if fo_service and targets:
            raise EntryError(prefix + "Targets cannot be set with Service")
        for i, target in enumerate(targets):
            tprefix = f"Bad Failover[{go_quote(subset_key)}].Targets[{i}]: "
            problem = _enterprise_target_error(target)
            if problem is not None:
                raise EntryError(tprefix + problem)
            if target.get("Peer") and target.get("ServiceSubset"):
                raise EntryError(tprefix + "Peer cannot be set with ServiceSubset")
            if target.get("Peer") and target.get("Datacenter"):
                raise EntryError(tprefix + "Peer cannot be set with Datacenter")
            t_subset = target.get("ServiceSubset", "")
            if t_subset and target.get("Service", "") in ("", name) and t_subset not in subsets:
                raise EntryError(
                    f"{tprefix}ServiceSubset {go_quote(t_subset)} is not a valid subset of "
                    f"{go_quote(name)}"
                )
        if any(dc == "" for dc in datacenters):
            raise EntryError(
                f"Bad Failover[{go_quote(subset_key)}].Datacenters: found empty datacenter"
            )

    for key in ("ConnectTimeout", "RequestTimeout"):
        if entry.get(key, 0) < 0:
            raise EntryError(f"Bad {key} '{format_duration_ns(entry[key])}', must be >= 0")

    lb = entry.get("LoadBalancer")
    if lb is not None:
        policy = lb.get("Policy", "")
        if policy not in _LB_POLICIES:
            raise EntryError(f"Bad LoadBalancer policy: {go_quote(policy)} is not supported")
        if policy != "ring_hash" and lb.get("RingHashConfig") is not None:
            raise EntryError(
                "Bad LoadBalancer configuration. RingHashConfig specified for incompatible "
                f"load balancing policy {go_quote(policy)}"
            )
        if policy != "least_request" and lb.get("LeastRequestConfig") is not None:
            raise EntryError(
                "Bad LoadBalancer configuration. LeastRequestConfig specified for incompatible "
                f"load balancing policy {go_quote(policy)}"
            )
        hash_policies = lb.get("HashPolicies") or []
        if policy not in ("ring_hash", "maglev") and hash_policies:
            raise EntryError(
                "Bad LoadBalancer configuration: HashPolicies specified for non-hash-based "
                f"Policy: {go_quote(policy)}"
            )
        for i, hp in enumerate(hash_policies):
            _validate_hash_policy(i, hp)


def _validate_hash_policy(i: int, hp: Mapping[str, Any]) -> None:
    field, value = hp.get("Field", ""), hp.get("FieldValue", "")
    prefix = f"Bad LoadBalancer HashPolicy[{i}]: "
    if field and field not in _HASH_FIELDS:
        raise EntryError(f"{prefix}{go_quote(field)} is not a supported field")
    if hp.get("SourceIP") and field:
        raise EntryError(
            f"{prefix}A single hash policy cannot hash both a source address and a "
            f"{go_quote(field)}"
        )
    if hp.get("SourceIP") and value:
        raise EntryError(f"{prefix}A FieldValue cannot be specified when hashing SourceIP")
    if field and not value:
        raise EntryError(f"{prefix}Field {go_quote(field)} was specified without a FieldValue")
    if value and not field:
        raise EntryError(f"{prefix}FieldValue requires a Field to apply to")
    cookie = hp.get("CookieConfig")
    if cookie is not None:
        if field != "cookie":
            raise EntryError(f"{prefix}cookie_config provided for {go_quote(field)}")
        if cookie.get("Session") and cookie.get("TTL", 0) != 0:
            raise EntryError(f"{prefix}a session cookie cannot have an associated TTL")


# --------------------------------------------------------------------------------------------
# ingress-gateway, terminating-gateway (stored for later use; the basic shape is checked)


def _normalize_ingress(entry: dict[str, Any]) -> None:
    for listener in entry.get("Listeners") or []:
        listener["Protocol"] = (listener.get("Protocol") or "tcp").lower()


def _validate_host(tls_enabled: bool, host: str) -> None:
    if host == WILDCARD:
        if tls_enabled:
            raise EntryError(
                "Host '*' is not allowed when TLS is enabled, all hosts must be valid DNS "
                "records to add as a DNSSAN"
            )
        return
    bare = host[2:] if host.startswith("*.") else host
    if not _is_domain_name(bare):
        raise EntryError(f"Host {go_quote(host)} must be a valid DNS hostname")
    if WILDCARD in bare:
        raise EntryError(
            f"Host {go_quote(host)} is not valid, a wildcard specifier is only allowed as the "
            "leftmost label"
        )


def _validate_gateway_tls(tls: dict[str, Any]) -> None:
    """An ingress gateway's (or listener's) TLS versions and cipher suites, with Consul's
    messages: known versions, max not below min, cipher suites only where TLS <= 1.2 can be
    negotiated and only names Envoy knows."""
    low, high = str(tls.get("TLSMinVersion") or ""), str(tls.get("TLSMaxVersion") or "")
    for version in (low, high):
        if version and version not in ENVOY_TLS_VERSIONS:
            raise EntryError(
                f"no matching TLS version found for {version}, please specify one of "
                f"[{', '.join(sorted(ENVOY_TLS_VERSIONS))}]"
            )
    order = ENVOY_TLS_VERSIONS[1:]  # TLS_AUTO is not comparable
    if low in order and high in order and order.index(high) < order.index(low):
        raise EntryError(
            f"configuring max version {high} less than the configured min version {low} is invalid"
        )
    suites = [str(s) for s in tls.get("CipherSuites") or ()]
    if suites:
        if low not in CIPHER_SUITE_MIN_VERSIONS:
            raise EntryError(
                "configuring CipherSuites is only applicable to connections negotiated with "
                f"TLS 1.2 or earlier, TLSMinVersion is set to {low}"
            )
        unknown = [s for s in suites if s not in ENVOY_CIPHER_SUITES]
        if unknown:
            raise EntryError(f"no matching Envoy TLS cipher suite found for {','.join(unknown)}")


def _validate_ingress(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    tls_enabled = bool((entry.get("TLS") or {}).get("Enabled"))
    _validate_gateway_tls(entry.get("TLS") or {})
    ports: set[int] = set()
    for listener in entry.get("Listeners") or []:
        port, protocol = listener.get("Port", 0), listener.get("Protocol", "tcp")
        where = f"(listener on port {port})"
        _validate_gateway_tls(listener.get("TLS") or {})
        if port in ports:
            raise EntryError(f"port {port} declared on two listeners")
        ports.add(port)
        if protocol not in ("tcp", "http", "http2", "grpc"):
            raise EntryError(
                "protocol must be 'tcp', 'http', 'http2', or 'grpc'. "
                f"'{protocol}' is an unsupported protocol"
            )
        services = listener.get("Services") or []
        if not services:
            raise EntryError(f"No service declared for listener with port {port}")
        if not is_http_like(protocol) and len(services) > 1:
            raise EntryError(
                "Multiple services per listener are only supported for L7 protocols, 'http', "
                f"'grpc' and 'http2' {where}"
            )
        hosts_seen: set[str] = set()
        names_seen: set[str] = set()
        for svc in services:
            name, hosts = svc.get("Name", ""), svc.get("Hosts") or []
            if protocol == "tcp":
                if name == WILDCARD:
                    raise EntryError(
                        f"Wildcard service name is only valid for protocol = 'http' {where}"
                    )
                if hosts:
                    raise EntryError(
                        "Associating hosts to a service is not supported for the tcp protocol "
                        + where
                    )
            if not name:
                raise EntryError(f"Service name cannot be blank {where}")
            if name == WILDCARD and hosts:
                raise EntryError(
                    f"Associating hosts to a wildcard service is not supported {where}"
                )
            if name in names_seen:
                raise EntryError(f"Service {name} cannot be added multiple times {where}")
            names_seen.add(name)
            for host in hosts:
                if host in hosts_seen:
                    raise EntryError(f"Hosts must be unique within a specific listener {where}")
                hosts_seen.add(host)
                _validate_host(tls_enabled, host)


def _validate_terminating(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    seen: set[str] = set()
    for svc in entry.get("Services") or []:
        name = svc.get("Name", "")
        if not name:
            raise EntryError("Service name cannot be blank.")
        if name in seen:
            raise EntryError(
                f"Service {go_quote(name)} was specified more than once within a namespace"
            )
        seen.add(name)
        cert, key, ca = svc.get("CertFile"), svc.get("KeyFile"), svc.get("CAFile")
        if (cert or key) and not (ca and cert and key):
            raise EntryError(
                f"Service {go_quote(name)} must have a CertFile, CAFile, and KeyFile specified "
                "for TLS origination"
            )


def _no_normalize(entry: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Kind:
    schema: _Obj
    normalize: Callable[[dict[str, Any]], None]
    validate: Callable[[dict[str, Any]], None]


_KINDS: dict[str, _Kind] = {
    PROXY_DEFAULTS: _Kind(
        PROXY_DEFAULTS_SCHEMA, _normalize_proxy_defaults, _validate_proxy_defaults
    ),
    SERVICE_DEFAULTS: _Kind(
        SERVICE_DEFAULTS_SCHEMA, _normalize_service_defaults, _validate_service_defaults
    ),
    SERVICE_INTENTIONS: _Kind(
        SERVICE_INTENTIONS_SCHEMA, _normalize_service_intentions, _validate_service_intentions
    ),
    SERVICE_ROUTER: _Kind(SERVICE_ROUTER_SCHEMA, _normalize_router, _validate_router),
    SERVICE_SPLITTER: _Kind(SERVICE_SPLITTER_SCHEMA, _normalize_splitter, _validate_splitter),
    SERVICE_RESOLVER: _Kind(SERVICE_RESOLVER_SCHEMA, _no_normalize, _validate_resolver),
    MESH: _Kind(MESH_SCHEMA, _normalize_mesh, _validate_mesh),
    INGRESS_GATEWAY: _Kind(INGRESS_GATEWAY_SCHEMA, _normalize_ingress, _validate_ingress),
    TERMINATING_GATEWAY: _Kind(TERMINATING_GATEWAY_SCHEMA, _no_normalize, _validate_terminating),
}


def entry_kind(body: Mapping[str, Any]) -> str:
    """The kind named by a body (`Kind` or `kind`), with Consul's decoding errors."""
    if not isinstance(body, Mapping):
        raise EntryError(
            f"json: cannot unmarshal {_go_kind(body)} into Go value of type "
            "map[string]interface {}",
            decoding=True,
        )
    if "Kind" in body:
        kind = body["Kind"]
    elif "kind" in body:
        kind = body["kind"]
    else:
        raise EntryError("Payload does not contain a kind/Kind key at the top level", decoding=True)
    if not isinstance(kind, str):
        raise EntryError("Kind value in payload is not a string", decoding=True)
    if kind not in _KINDS:
        raise EntryError(f"invalid config entry kind: {kind}", decoding=True)
    return kind


def normalize(body: Mapping[str, Any]) -> dict[str, Any]:
    """Decode, normalize and validate a config entry body; return the canonical entry.

    Raises EntryError with Consul's text (see EntryError.decoding for which kind of failure).
    `CreateIndex`/`ModifyIndex` in the body are ignored: the store owns them."""
    kind = entry_kind(body)
    spec = _KINDS[kind]
    entry = decode(spec.schema, body)
    entry["Kind"] = kind
    spec.normalize(entry)
    spec.validate(entry)
    return spec.schema.emit(entry)


def make_key(kind: str, name: str) -> tuple[str, str]:
    """The (kind, name) a stored entry is filed under, checking the kind as Consul's
    `GET/DELETE /v1/config/<kind>/<name>` does (`invalid config entry kind: x`)."""
    if kind not in _KINDS:
        raise EntryError(f"invalid config entry kind: {kind}", decoding=True)
    return kind, name
