"""HCL and JSON config text -> plain Python data, the way Consul's HCL1 decoder saw it.

python-hcl2 (>= 7) returns blocks as lists of bodies marked `__is_block__`, string literals
with their quotes and escapes still in place, and non-literal expressions wrapped as `${...}`.
We turn that into plain dicts, lists and scalars. Repeated blocks (`service { } service { }`)
stay a `BlockList` so the schema can tell "several blocks" (merge them into one map, or take
them as list items) from an attribute that really is a list.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from typing import Any

from consulpy.config.errors import ConfigError
from consulpy.util.decode import DecodeError, check_text
from consulpy.util.decode import parse_json as parse_json_body

_BLOCK_MARK = "__is_block__"
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
# HCL1 (Consul's dialect) allows quoted attribute names in blocks (`service_ttl { "*" = "5s" }`);
# HCL2 does not, so we swap them for an encoded identifier before parsing and back after.
_QUOTED_KEY = re.compile(r'(^|[{,])(\s*)"([^"\\\n]*)"(\s*=)')
_HEREDOC_START = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\s*$")
_KEY_PREFIX = "__consulpy_key_"


def _hcl2() -> Any:
    """python-hcl2, imported on the first parse: with Lark it is ~3.7 MiB that an agent whose
    configuration is all flags and JSON never needs."""
    import hcl2

    return hcl2


class BlockList(list[Any]):
    """The bodies of one or more HCL blocks with the same name, in file order."""


def parse_hcl(text: str, source: str) -> dict[str, Any]:
    """Parse HCL text (or JSON given as HCL, which HCL1 accepted) into plain data."""
    if text.lstrip().startswith("{"):
        return parse_json(text, source)
    hcl2 = _hcl2()
    options = _serialization_options()
    text = _encode_quoted_keys(text)
    try:
        raw = hcl2.loads(text, serialization_options=options) if options else hcl2.loads(text)
    except Exception as exc:  # lark raises many exception types; all mean "bad syntax"
        raise ConfigError(f"Error parsing {source}: {_syntax_message(exc)}") from None
    quoted = options is not None
    errors: list[str] = []
    result = _plain(raw, "", quoted, source, errors)
    if errors:
        raise ConfigError(errors)
    result = _join_surrogate_pairs(result)
    try:
        check_text(result)  # a lone "\ud800" escape: as in JSON, not text
    except DecodeError as exc:
        raise ConfigError(f"Error parsing {source}: {exc}") from None
    return result


def _join_surrogate_pairs(value: Any) -> Any:
    """The HCL parser unescapes `\\ud83d\\ude00` into two surrogates; JSON's decoder makes
    them one character. Do the same (a lone one stays, and is refused)."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return type(value)(_join_surrogate_pairs(v) for v in value)
    if isinstance(value, dict):
        return {_join_surrogate_pairs(k): _join_surrogate_pairs(v) for k, v in value.items()}
    return value


def parse_json(text: str, source: str) -> dict[str, Any]:
    """Parse a JSON config document; the top level must be an object. The HTTP API's JSON
    path, so a file cannot hold what a request may not (lone surrogates, NaN, deep nesting)."""
    try:
        data = parse_json_body(text)
    except DecodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, json.JSONDecodeError):
            detail = f"invalid JSON at line {cause.lineno}, column {cause.colno}: {cause.msg}"
        else:
            detail = str(exc)
        raise ConfigError(f"Error parsing {source}: {detail}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Error parsing {source}: the top level must be a JSON object")
    return data


def _serialization_options() -> Any:
    """Options for python-hcl2 >= 7; None for older releases (plain strings, no block marks)."""
    cls = getattr(_hcl2(), "SerializationOptions", None)
    if cls is None:
        return None
    wanted = {
        "with_comments": False,
        "preserve_heredocs": False,
        "explicit_blocks": True,
        "strip_string_quotes": False,
        "wrap_objects": False,
        "wrap_tuples": False,
    }
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in wanted.items() if k in names})


def _syntax_message(exc: Exception) -> str:
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    where = f" at line {line}, column {column}" if isinstance(line, int) and line > 0 else ""
    if token is not None:
        text = str(token).strip()
        return f"HCL syntax error{where}: unexpected " + (repr(text) if text else "end of input")
    char = getattr(exc, "char", None)
    if char is not None:
        return f"HCL syntax error{where}: unexpected character {char!r}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"HCL syntax error{where}: {first}"


def _is_block_body(value: Any) -> bool:
    """A block body carries the mark; a labelled block (`sink "x" { }`) nests it under labels."""
    if not isinstance(value, dict):
        return False
    if value.get(_BLOCK_MARK):
        return True
    return len(value) == 1 and _is_block_body(next(iter(value.values())))


def _plain(value: Any, path: str, quoted: bool, source: str, errors: list[str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.startswith("__") and not key.startswith(_KEY_PREFIX):
                continue  # __is_block__, __comments__ and other serialiser metadata
            name = _unquote_key(key)
            out[name] = _plain(item, _join(path, name), quoted, source, errors)
        return out
    if isinstance(value, list):
        items = [_plain(v, f"{path}[{i}]", quoted, source, errors) for i, v in enumerate(value)]
        if (
            value
            and all(isinstance(v, dict) for v in value)
            and (not quoted or all(_is_block_body(v) for v in value))
        ):
            return BlockList(items)
        return items
    if isinstance(value, str):
        if not quoted:
            return value
        try:
            return _string(value)
        except ValueError as exc:
            errors.append(f"Error parsing {source}: {path}: {exc}")
            return None
    return value


def _string(raw: str) -> Any:
    """A serialised HCL2 value: a quoted literal, or an expression we can only read if numeric."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return _unescape(raw[1:-1])
    inner = raw[2:-1].strip() if raw.startswith("${") and raw.endswith("}") else raw
    if _NUMBER.fullmatch(inner):
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner else number
    raise ValueError(f'unsupported HCL expression {inner!r} (quote strings: "...")')


def _encode_quoted_keys(text: str) -> str:
    """Rewrite `"any key" = v` as `__consulpy_key_<hex>__ = v`, outside heredocs."""
    lines = text.split("\n")
    heredoc: str | None = None
    for i, line in enumerate(lines):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if '"' in line:
            lines[i] = _QUOTED_KEY.sub(_encoded_key, line)
        start = _HEREDOC_START.search(line)
        if start:
            heredoc = start.group(1)
    return "\n".join(lines)


def _encoded_key(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}{_KEY_PREFIX}{m.group(3).encode().hex()}__{m.group(4)}"


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == '"' and key[-1] == '"':
        key = _unescape(key[1:-1])
    if key.startswith(_KEY_PREFIX) and key.endswith("__"):
        try:
            return bytes.fromhex(key[len(_KEY_PREFIX) : -2]).decode()
        except ValueError:
            return key
    return key


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n:
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            width = {"u": 4, "U": 8}.get(nxt)
            digits = body[i + 2 : i + 2 + width] if width else ""
            if (
                width
                and len(digits) == width
                and all(c in "0123456789abcdefABCDEF" for c in digits)
            ):
                out.append(chr(int(digits, 16)))
                i += 2 + width
                continue
        if ch in "$%" and body.startswith(ch * 2 + "{", i):
            out.append(ch + "{")  # HCL2 escapes a literal "${" as "$${"
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def release_parser() -> None:
    """Drop python-hcl2's cached Lark parser (grammar, LALR tables, compiled lexer patterns:
    about 6 MiB of a server's RSS). A server parses HCL at start-up and then rarely (a reload,
    an ACL policy), so it need not keep the parser; the next parse builds it again."""
    hcl2 = sys.modules.get("hcl2")
    if hcl2 is None:
        return  # never imported: nothing parsed, nothing cached
    parser_module = getattr(hcl2, "parser", None)
    cached = getattr(parser_module, "parser", None)
    clear = getattr(cached, "cache_clear", None)
    if clear is not None:
        clear()
