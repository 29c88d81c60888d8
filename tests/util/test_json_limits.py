"""The one JSON path (`consulpy.util.decode.parse_json`): depth, numbers, text."""

from __future__ import annotations

import pytest

from consulpy.util.decode import MAX_DEPTH, DecodeError, parse_json


def test_depth_limit_counts_nesting_not_brackets_in_strings() -> None:
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(DecodeError, match="exceeded max depth"):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(DecodeError, match="exceeded max depth"):
        parse_json(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert parse_json(b'["' + b"[" * 10_000 + b'"]') == ["[" * 10_000]
    # Escaped quotes and backslashes do not end a string early.
    assert parse_json(b'["\\"[[", "\\\\", ' + b"[]," * 1000 + b"[]]")
    assert parse_json(b"[" + b"[1]," * 100_000 + b"[]]")[-1] == []


def test_an_unterminated_string_after_many_brackets_is_refused_promptly() -> None:
    """Stripping strings before parsing would be quadratic on this (each quote starts a
    string that runs to the end); the parser refuses it first."""
    with pytest.raises(DecodeError):
        parse_json(b"[" * 300 + b'"' + b'\\"' * 200_000)


@pytest.mark.parametrize(
    "body,text",
    [
        (b"NaN", "invalid character 'N'"),
        (b"[Infinity]", "invalid character 'I'"),
        (b"[-Infinity]", "invalid character '-'"),
        (b"1e400", "cannot unmarshal number 1e400 into Go value of type float64"),
        (b"-1e400", "cannot unmarshal number -1e400"),
        (b"9" * 5000, "cannot unmarshal number 999"),
    ],
)
def test_numbers_are_finite(body: bytes, text: str) -> None:
    with pytest.raises(DecodeError, match=text):
        parse_json(body)


def test_integers_keep_64_bits_and_beyond_become_floats_as_in_go() -> None:
    assert parse_json(b"[18446744073709551615, -9223372036854775808]") == [
        (1 << 64) - 1,
        -(1 << 63),
    ]
    assert parse_json(b"18446744073709551616") == float(1 << 64)


@pytest.mark.parametrize(
    "body", [b'"\\ud800"', b'{"\\udfff": 1}', b'[["x\\uDBFFy"]]', b'{"a": {"b": "\\udc00"}}']
)
def test_lone_surrogates_are_refused(body: bytes) -> None:
    with pytest.raises(DecodeError, match="lone UTF-16 surrogate"):
        parse_json(body)


def test_surrogate_pairs_and_escaped_backslashes_are_text() -> None:
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert parse_json(b'"\\\\ud800"') == "\\ud800"
    with pytest.raises(DecodeError, match="invalid character in string literal"):
        parse_json(b'"\xff"')
