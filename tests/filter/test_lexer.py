"""Tokenizer: token kinds and offsets, Go string quoting, lexical errors."""

from __future__ import annotations

import pytest

from consulpy.filter.errors import FilterError, position_prefix
from consulpy.filter.lexer import Kind, tokenize


def kinds(source: str) -> list[Kind]:
    return [t.kind for t in tokenize(source)]


def test_tokens_and_offsets():
    tokens = tokenize('Service.Meta["env"] == "prod"')
    assert [(t.kind, t.text, t.start, t.end) for t in tokens] == [
        (Kind.IDENT, "Service", 0, 7),
        (Kind.DOT, ".", 7, 8),
        (Kind.IDENT, "Meta", 8, 12),
        (Kind.LBRACKET, "[", 12, 13),
        (Kind.STRING, '"env"', 13, 18),
        (Kind.RBRACKET, "]", 18, 19),
        (Kind.EQ, "==", 20, 22),
        (Kind.STRING, '"prod"', 23, 29),
        (Kind.EOF, "", 29, 29),
    ]


def test_operators_and_whitespace():
    assert kinds("a!=b\t==\r\n( ) ,") == [
        Kind.IDENT,
        Kind.NE,
        Kind.IDENT,
        Kind.EQ,
        Kind.LPAREN,
        Kind.RPAREN,
        Kind.COMMA,
        Kind.EOF,
    ]


@pytest.mark.parametrize(
    ("source", "texts"),
    [
        ("0", ["0"]),
        ("8080", ["8080"]),
        ("-12", ["-12"]),
        ("1.25", ["1.25"]),
        ("-0.5", ["-0.5"]),
        ("1.", ["1", "."]),
        ("0123", ["0", "123"]),  # go-bexpr: a number never starts with 0 unless it is 0
        ("1.2.3", ["1.2", ".", "3"]),
    ],
)
def test_numbers(source, texts):
    tokens = tokenize(source)[:-1]
    assert [t.text for t in tokens] == texts
    assert tokens[0].kind is Kind.NUMBER


def test_identifiers_are_ascii_letters_digits_underscore():
    tokens = tokenize("Service_Name2 x_1")
    assert [t.text for t in tokens[:-1]] == ["Service_Name2", "x_1"]
    assert tokenize("é")[0].kind is Kind.INVALID
    assert tokenize("_a")[0].kind is Kind.INVALID


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r'"plain"', "plain"),
        (r'"tab\tnew\nline"', "tab\tnew\nline"),
        (r'"q\"uote"', 'q"uote'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\a\b\f\r\v"', "\a\b\f\r\v"),
        (r'"\x41\101"', "AA"),
        (r'"\u00e9\U0001F600"', "é😀"),
        (r'"\xc3\xa9"', "é"),  # \x escapes are bytes, as in Go: these two make UTF-8 é
        ('"naïve ✓"', "naïve ✓"),
        (r"`raw \n string`", r"raw \n string"),
        ("`multi\nline`", "multi\nline"),
        ("`cr\r\nlf`", "cr\nlf"),  # strconv.Unquote drops \r from raw strings
        ('""', ""),
        ("``", ""),
    ],
)
def test_strings(source, value):
    token = tokenize(source)[0]
    assert token.kind is Kind.STRING
    assert token.value == value
    assert token.text == source


def test_invalid_utf8_bytes_never_equal_text():
    token = tokenize(r'"\xff"')[0]
    assert token.value != "\xff"
    assert token.value != "ÿ"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('a == "open', "1:6 (5): Unterminated string literal"),
        ("a == `open", "1:6 (5): Unterminated string literal"),
        ('"ends in backslash\\', "1:1 (0): Unterminated string literal"),
        ('"bad \\q"', "1:6 (5): invalid escape sequence \\q in string"),
        ('"bad \\\'"', "1:6 (5): invalid escape sequence \\' in string"),
        ('"\\x4"', '1:2 (1): invalid escape sequence \\x4" in string'),
        ('"\\777"', "1:2 (1): invalid octal escape '\\\\777' in string"),
        ('"\\uD800"', "1:2 (1): escape \\uD800 is not a valid Unicode code point"),
        ('"line\nbreak"', "1:6 (5): newline in string literal (write it as \\n)"),
    ],
)
def test_string_errors(source, message):
    with pytest.raises(FilterError) as info:
        tokenize(source)
    assert str(info.value) == message


def test_invalid_characters_become_tokens():
    tokens = tokenize("a = b ! @ -x")
    assert [t.kind for t in tokens] == [
        Kind.IDENT,
        Kind.INVALID,
        Kind.IDENT,
        Kind.INVALID,
        Kind.INVALID,
        Kind.INVALID,
        Kind.IDENT,
        Kind.EOF,
    ]


def test_position_prefix_counts_lines_and_bytes():
    source = "a == 1 and\n  é == 2"
    offset = source.index("==", 10)
    assert position_prefix(source, offset) == "2:5 (16)"
    assert position_prefix(source, 0) == "1:1 (0)"
