"""Tokenizer for filter expressions.

Whitespace is only a separator, but the parser needs to know where it was (a selector's `.key`
and `["key"]` parts must touch the name before them, a number must be followed by whitespace,
`)` or the end), so every token keeps its start and end offsets.

Strings follow Go's quoting, as go-bexpr unquotes them with `strconv.Unquote`: double-quoted
strings process escapes, backtick strings are raw. Characters that cannot start any token become
INVALID tokens so the parser can say what it expected at that place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from consulpy.filter.errors import syntax_error


class Kind(Enum):
    IDENT = "identifier"
    NUMBER = "number"
    STRING = "string"
    LPAREN = '"("'
    RPAREN = '")"'
    LBRACKET = '"["'
    RBRACKET = '"]"'
    DOT = '"."'
    COMMA = '","'
    EQ = '"=="'
    NE = '"!="'
    INVALID = "invalid character"
    EOF = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the source characters of the token
    value: str  # decoded content for STRING, else the same as text
    start: int
    end: int
    quote: str = ""  # '"' or '`' for strings


WHITESPACE = frozenset(" \t\r\n")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_REST = _IDENT_START | frozenset("0123456789_")
_DIGITS = frozenset("0123456789")
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")
_PUNCT = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    ".": Kind.DOT,
    ",": Kind.COMMA,
}
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


def tokenize(source: str) -> list[Token]:
    """All tokens of `source`, ending with one EOF token. Raises FilterError for strings that
    are unterminated or hold an invalid escape."""
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c in WHITESPACE:
            i += 1
            continue
        if c in _IDENT_START:
            j = i + 1
            while j < n and source[j] in _IDENT_REST:
                j += 1
            tokens.append(Token(Kind.IDENT, source[i:j], source[i:j], i, j))
            i = j
        elif c in _DIGITS or (c == "-" and i + 1 < n and source[i + 1] in _DIGITS):
            j = _scan_number(source, i)
            tokens.append(Token(Kind.NUMBER, source[i:j], source[i:j], i, j))
            i = j
        elif c == '"':
            tokens.append(_scan_double_quoted(source, i))
            i = tokens[-1].end
        elif c == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise syntax_error(source, i, "Unterminated string literal")
            # Go's strconv.Unquote drops carriage returns from raw strings.
            value = source[i + 1 : end].replace("\r", "")
            tokens.append(Token(Kind.STRING, source[i : end + 1], value, i, end + 1, "`"))
            i = end + 1
        elif c in _PUNCT:
            tokens.append(Token(_PUNCT[c], c, c, i, i + 1))
            i += 1
        elif c in "=!" and i + 1 < n and source[i + 1] == "=":
            kind = Kind.EQ if c == "=" else Kind.NE
            tokens.append(Token(kind, source[i : i + 2], source[i : i + 2], i, i + 2))
            i += 2
        else:
            tokens.append(Token(Kind.INVALID, c, c, i, i + 1))
            i += 1
    tokens.append(Token(Kind.EOF, "", "", n, n))
    return tokens


def _scan_number(source: str, i: int) -> int:
    """End of the number at i: `-? (0 | [1-9][0-9]*) (. [0-9]+)?` as in go-bexpr's grammar."""
    n = len(source)
    if source[i] == "-":
        i += 1
    if source[i] == "0":
        i += 1
    else:
        while i < n and source[i] in _DIGITS:
            i += 1
    if i + 1 < n and source[i] == "." and source[i + 1] in _DIGITS:
        i += 2
        while i < n and source[i] in _DIGITS:
            i += 1
    return i


def _scan_double_quoted(source: str, start: int) -> Token:
    """A double-quoted string with Go escapes. Unlike go-bexpr (whose grammar ends a string at
    the first `"` even after a backslash), `\\"` is accepted as an escaped quote."""
    out = bytearray()
    i = start + 1
    n = len(source)
    while True:
        if i >= n:
            raise syntax_error(source, start, "Unterminated string literal")
        c = source[i]
        if c == '"':
            break
        if c == "\n":
            raise syntax_error(source, i, "newline in string literal (write it as \\n)")
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            raise syntax_error(source, start, "Unterminated string literal")
        i = _decode_escape(source, i, out)
    # \x and octal escapes insert raw bytes, as in Go; bytes that do not form UTF-8 survive as
    # lone surrogates, which (as in Go) never equal any real text.
    value = out.decode("utf-8", "surrogateescape")
    return Token(Kind.STRING, source[start : i + 1], value, start, i + 1, '"')


def _decode_escape(source: str, i: int, out: bytearray) -> int:
    """Decode the escape at source[i] (a backslash) into out; return the index after it."""
    e = source[i + 1]
    if e in _SIMPLE_ESCAPES:
        out += _SIMPLE_ESCAPES[e].encode()
        return i + 2
    if e in _OCTAL:
        digits = source[i + 1 : i + 4]
        if len(digits) == 3 and all(d in _OCTAL for d in digits) and int(digits, 8) <= 255:
            out.append(int(digits, 8))
            return i + 4
        raise syntax_error(source, i, f"invalid octal escape {source[i : i + 4]!r} in string")
    width = {"x": 2, "u": 4, "U": 8}.get(e)
    if width is None:
        raise syntax_error(source, i, f"invalid escape sequence \\{e} in string")
    digits = source[i + 2 : i + 2 + width]
    if len(digits) != width or not all(d in _HEX for d in digits):
        raise syntax_error(source, i, f"invalid escape sequence \\{e}{digits} in string")
    code = int(digits, 16)
    if e == "x":
        out.append(code)
    elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise syntax_error(source, i, f"escape \\{e}{digits} is not a valid Unicode code point")
    else:
        out += chr(code).encode()
    return i + 2 + width
