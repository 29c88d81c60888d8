"""The `jwt` auth method: verify a bearer JWT against static public keys and project its
claims into the variables binding rules see.

`validate(config, bearer_token)` returns `{"value": {name: str}, "list": {name: [str]}}`:
`ClaimMappings` fill `value`, `ListClaimMappings` fill `list`; binding-rule selectors are
evaluated against that document (`value.team == "web"`, `"admins" in list.groups`) and bind
names interpolate `${value.<name>}`. Failures raise `ValueError` with the reason a caller sees.

Supported config: `JWTValidationPubKeys` (PEM) or `JWKSURL` (+ `JWKSCACert`; keys fetched by
`jwks.py`, the caller passes them in), `JWTSupportedAlgs` (default RS256), `BoundIssuer`,
`BoundAudiences`, `ClaimMappings`, `ListClaimMappings`, `ClockSkewLeeway`, `ExpirationLeeway`,
`NotBeforeLeeway` (seconds, as in Consul). `OIDCDiscoveryURL` is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from consulpy.acl import jwks

KNOWN = {
    "JWTValidationPubKeys",
    "JWKSURL",
    "JWKSCACert",
    "JWTSupportedAlgs",
    "BoundIssuer",
    "BoundAudiences",
    "ClaimMappings",
    "ListClaimMappings",
    "ClockSkewLeeway",
    "ExpirationLeeway",
    "NotBeforeLeeway",
}
DEFAULT_CLOCK_SKEW = 60.0
DEFAULT_ALGS = ("RS256",)


def check_config(config: dict[str, Any]) -> None:
    """Refuse a config the method could not use (Consul's texts where it has them)."""
    if config.get("OIDCDiscoveryURL"):
        raise ValueError(
            "OIDCDiscoveryURL is not supported by consulpy: use JWTValidationPubKeys or JWKSURL"
        )
    unknown = sorted(set(config) - KNOWN)
    if unknown:
        raise ValueError(f"unknown jwt auth method config fields: {', '.join(unknown)}")
    keys = config.get("JWTValidationPubKeys") or []
    url = config.get("JWKSURL") or ""
    if bool(keys) == bool(url):
        raise ValueError(
            "exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set"
        )
    if url:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("JWKSURL must be an http or https URL")
        ca = config.get("JWKSCACert") or ""
        if not isinstance(ca, str):
            raise ValueError("JWKSCACert must be a PEM string")
        jwks.ssl_context(ca)
    elif config.get("JWKSCACert"):
        raise ValueError("JWKSCACert should not be set unless JWKSURL is set")
    _keys(config)
    for name in ("ClaimMappings", "ListClaimMappings"):
        mapping = config.get(name) or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ValueError(f"{name} must map claim names to variable names")
    audiences = config.get("BoundAudiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ValueError("BoundAudiences must be a list of strings")
    for name in ("ClockSkewLeeway", "ExpirationLeeway", "NotBeforeLeeway"):
        value = config.get(name, 0)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{name} must be a number of seconds")


def _keys(config: dict[str, Any]) -> list[Any]:
    out = []
    for pem in config.get("JWTValidationPubKeys") or []:
        try:
            out.append(load_pem_public_key(str(pem).encode()))
        except ValueError as exc:
            raise ValueError(f"error parsing public key: {exc}") from exc
    return out


def _leeway(config: dict[str, Any], name: str) -> float:
    skew = config.get("ClockSkewLeeway")
    base = DEFAULT_CLOCK_SKEW if skew is None else float(skew)
    return base + float(config.get(name) or 0)


async def keys_for(config: dict[str, Any], bearer_token: str) -> list[Any]:
    """The keys to try for this token: the static ones, or the JWKS set's key for its `kid`
    (fetched, cached, refetched on an unknown kid)."""
    url = config.get("JWKSURL") or ""
    if not url:
        return _keys(config)
    try:
        kid = jwt.get_unverified_header(bearer_token).get("kid")
    except jwt.PyJWTError as exc:
        raise ValueError(f"failed to decode the bearer token: {exc}") from exc
    return await jwks.CACHE.keys(url, config.get("JWKSCACert") or "", kid)


def validate(
    config: dict[str, Any], bearer_token: str, keys: list[Any] | None = None
) -> dict[str, Any]:
    algorithms = list(config.get("JWTSupportedAlgs") or DEFAULT_ALGS)
    claims: dict[str, Any] | None = None
    error: Exception | None = None
    for key in _keys(config) if keys is None else keys:
        try:
            claims = jwt.decode(
                bearer_token,
                key,
                algorithms=algorithms,
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False},
            )
            break
        except jwt.InvalidSignatureError as exc:
            error = exc
        except jwt.PyJWTError as exc:
            raise ValueError(f"failed to decode the bearer token: {exc}") from exc
    if claims is None:
        raise ValueError("failed to verify the bearer token's signature") from error
    _check_times(config, claims)
    issuer = config.get("BoundIssuer") or ""
    if issuer and claims.get("iss") != issuer:
        raise ValueError("invalid issuer (iss) claim")
    audiences = config.get("BoundAudiences") or []
    if audiences:
        aud = claims.get("aud")
        have = aud if isinstance(aud, list) else [aud] if aud else []
        if not set(have) & set(audiences):
            raise ValueError(
                "invalid audience (aud) claim: audience provided does not match any "
                "expected audience"
            )
    return project(config, claims)


def _check_times(config: dict[str, Any], claims: dict[str, Any]) -> None:
    import time

    now = time.time()
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if isinstance(exp, (int, float)) and now > exp + _leeway(config, "ExpirationLeeway"):
        raise ValueError("invalid expiration time (exp) claim: token is expired")
    skew = _leeway(config, "NotBeforeLeeway")
    if isinstance(nbf, (int, float)) and now < nbf - skew:
        raise ValueError("invalid not before (nbf) claim: token not yet valid")
    if isinstance(iat, (int, float)) and now < iat - skew:
        raise ValueError("invalid issued at (iat) claim: token issued in the future")


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A top-level claim, or a JSON pointer (`/a/b`) into nested claims."""
    if not name.startswith("/"):
        return claims.get(name)
    value: Any = claims
    for part in name[1:].split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part.replace("~1", "/").replace("~0", "~"))
    return value


def project(config: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, str] = {}
    for claim, var in (config.get("ClaimMappings") or {}).items():
        value = _claim(claims, claim)
        if value is None:
            continue
        if isinstance(value, bool):
            values[var] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            values[var] = str(value)
        else:
            raise ValueError(f"error converting claim '{claim}' to string")
    lists: dict[str, list[str]] = {}
    for claim, var in (config.get("ListClaimMappings") or {}).items():
        value = _claim(claims, claim)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, (str, int, float)) for i in items):
            raise ValueError(f"error converting claim '{claim}' to a list of strings")
        lists[var] = [str(i) for i in items]
    return {"value": values, "list": lists}
