"""The RE2 engine behind `matches`: syntax, Go's error texts for what RE2 lacks, linear time,
and a differential test against Python's `re` on the syntax both share."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.filter.regex import RegexError, compile_regex
from consulpy.filter.regex import machine as machine_module
from tests.filter.budget import examples


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("", "", True),
        ("", "anything", True),
        ("web", "my-web-1", True),  # unanchored, like regexp.MatchString
        ("^web", "my-web", False),
        (r"^web-\d+$", "web-12", True),
        (r"^web-\d+$", "web-12\n", False),  # $ is the end of the text without (?m)
        ("a|b", "cb", True),
        ("a|b", "cd", False),
        ("x{2,3}", "x", False),
        ("x{2,3}", "axxb", True),
        ("^x{2}$", "xxx", False),
        ("^x{2,}$", "xxxxx", True),
        ("^(ab){0,2}c$", "ababc", True),
        ("^(ab){0,2}c$", "abababc", False),
        ("^a{0}b$", "b", True),
        ("colou?r", "color", True),
        ("[a-c]+z", "bbz", True),
        ("[^a-c]", "abc", False),
        ("[^a]", "\n", True),  # negated classes match newline in Go
        ("[]a]", "]", True),
        ("[a-]", "-", True),
        ("[a-c-e]", "-", True),
        (r"[\d.]+", "1.5", True),
        (r"[\D]", "123", False),
        (r"\S+\s\w", "ab c", True),
        (r"\W", "abc_9", False),
        ("a.b", "a\nb", False),
        ("(?s)a.b", "a\nb", True),
        ("(?s:a.)b", "a\nb", True),
        ("(?i)HeLLo", "hello world", True),
        ("(?i:a)b", "Ab", True),
        ("(?i:a)b", "AB", False),
        ("a(?i)b|c", "C", True),  # flags last to the end of the group, across |
        ("(a(?i)b)c", "aBC", False),
        ("(?i)[a-c]x", "BX", True),
        ("(?i)k", "\u212a", True),  # Kelvin sign folds to k
        ("(?i)[k]", "\u212a", True),
        ("(?i)ſ", "S", True),
        ("(?-i:a)", "A", False),
        ("(?m)^b$", "a\nb\nc", True),
        ("^b$", "a\nb\nc", False),
        (r"\Ab", "ab", False),
        (r"a\z", "a\n", False),
        (r"\bfoo\b", "a foo.", True),
        (r"\bfoo\b", "afoo", False),
        (r"\Bfoo", "afoo", True),
        (r"\bé", "é", False),  # \b knows ASCII word characters only
        (r"\x41\x{42}\101\0", "ABA\x00", True),
        (r"\t\n\r\f\v\a", "\t\n\r\f\v\a", True),
        (r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\\-\/", ".*+?()[]{}|^$\\-/", True),
        (r"\Qa.b*\E+", "a.b**", True),
        (r"\Qa.b", "axb", False),
        ("a{", "a{", True),
        ("a{,2}", "a{,2}", True),  # not a repeat in RE2
        ("a{x}", "a{x}", True),
        ("{", "{", True),
        ("}", "}", True),
        ("]", "]", True),
        (r"\pL+\pN", "abc1", True),
        (r"\p{Lu}", "abc", False),
        (r"\PL", "abc", False),
        (r"\p{^L}", "ab1", True),
        (r"\p{Any}", "\x00", True),
        ("[[:alpha:]]+[[:digit:]]", "ab1", True),
        ("[[:^alpha:]]", "abc", False),
        ("[[:upper:][:digit:]]", "a1", True),
        ("[[:punct:]]", "a!", True),
        ("(?P<name>a)(?<other>b)", "ab", True),
        ("(?:a|b)+c", "ababc", True),
        ("(?)a", "a", True),
        ("(a*)*b", "aaab", True),
        ("(|a)*b", "b", True),
        ("^*a", "a", True),
        ("a*?b", "aab", True),
        ("(?U)a+b", "aab", True),
        ("é+", "café", True),
        ("😀", "x😀y", True),
    ],
)
def test_matching(pattern, text, found):
    assert compile_regex(pattern).search(text) is found


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", r"invalid escape sequence: `\1`"),
        (r"\9", r"invalid escape sequence: `\9`"),
        ("a(?=b)", "invalid or unsupported Perl syntax: `(?=`"),
        ("a(?!b)", "invalid or unsupported Perl syntax: `(?!`"),
        ("(?<=a)b", "invalid or unsupported Perl syntax: `(?<=`"),
        ("(?<!a)b", "invalid or unsupported Perl syntax: `(?<!`"),
        ("(?>a)", "invalid or unsupported Perl syntax: `(?>`"),
        ("(?#note)", "invalid or unsupported Perl syntax: `(?#`"),
        ("(?(1)a|b)", "invalid or unsupported Perl syntax: `(?(`"),
        ("(?P=n)", "invalid or unsupported Perl syntax: `(?P`"),
        ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
        ("(?i-)", "invalid or unsupported Perl syntax: `(?i-)`"),
        ("(?-)", "invalid or unsupported Perl syntax: `(?-)`"),
        ("(?i", "invalid or unsupported Perl syntax: `(?i`"),
        ("a*+", "invalid nested repetition operator: `*+`"),
        ("a++", "invalid nested repetition operator: `++`"),
        ("a**", "invalid nested repetition operator: `**`"),
        ("a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
        ("*a", "missing argument to repetition operator: `*`"),
        ("a|+", "missing argument to repetition operator: `+`"),
        ("(?i)?", "missing argument to repetition operator: `?`"),
        ("{2}", "missing argument to repetition operator: `{2}`"),
        ("a{2,1}", "invalid repeat count: `{2,1}`"),
        ("a{1001}", "invalid repeat count: `{1001}`"),
        ("(a{500}){3}", "invalid repeat count: `(a{500}){3}`"),
        ("[z-a]", "invalid character class range: `z-a`"),
        ("[[:word2:]]", "invalid character class range: `[:word2:]`"),
        ("[a", "missing closing ]: `[a`"),
        ("[]", "missing closing ]: `[]`"),
        ("(a", "missing closing ): `(a`"),
        ("a)", "unexpected ): `a)`"),
        ("a\\", "trailing backslash at end of expression: ``"),
        (r"\Z", r"invalid escape sequence: `\Z`"),
        (r"\C", r"invalid escape sequence: `\C`"),
        (r"\e", r"invalid escape sequence: `\e`"),
        (r"\x4", r"invalid escape sequence: `\x4`"),
        (r"\x{110000}", r"invalid escape sequence: `\x{110000}`"),
        ("(?P<>a)", "invalid named capture: `(?P<>`"),
        ("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`"),
        ("(?P<n>a)(?P<n>b)", "duplicate capture group name: `n`"),
        (
            r"\p{Greek}",
            "unsupported Unicode class (consulpy knows general categories and Any): "
            r"`\p{Greek}`",
        ),
    ],
)
def test_rejected(pattern, message):
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    assert str(info.value) == f"error parsing regexp: {message}"


def test_nesting_and_size_limits():
    with pytest.raises(RegexError, match="nests too deeply"):
        compile_regex("(" * 200 + "a" + ")" * 200)
    with pytest.raises(RegexError, match="expression too large"):
        compile_regex("(" + "abcdefghij" * 10 + "){999}")


def test_pathological_patterns_run_in_linear_time():
    # A backtracking engine needs ~2^n steps for these; they must simply finish here.
    text = "a" * 20_000
    assert compile_regex("(a*)*b").search(text) is False
    assert compile_regex("(a|aa)+$").search(text + "b") is False
    assert compile_regex("^(a+)+$").search(text + "!") is False
    assert compile_regex("(x+x+)+y").search("x" * 20_000) is False
    assert compile_regex("(a|a)*c").search(text + "c") is True


def test_cache_is_replaced_when_full(monkeypatch):
    monkeypatch.setattr(machine_module, "MAX_CACHED_TRANSITIONS", 10)
    rx = compile_regex("[a-z]+[0-9]")
    for i in range(200):
        assert rx.search(f"item{i}") is True
        assert rx.search(f"item-{chr(0x4E00 + i)}") is False


# -- differential test: on syntax RE2 and Python's re read alike, they must agree --------------

_ATOMS = [
    ("a", "a"),
    ("b", "b"),
    (".", "."),
    ("[ab]", "[ab]"),
    ("[^a]", "[^a]"),
    (r"\s", r"[\t\n\f\r ]"),
    (r"\w", r"\w"),
    ("^", "^"),
    ("$", r"\Z"),
    (r"\b", r"\b"),
]


@st.composite
def _pattern_pairs(draw, depth=0):
    """A pattern in RE2 syntax and the same pattern for Python's re."""
    kind = draw(st.sampled_from(["atom", "atom", "concat", "alt", "repeat", "group"]))
    if kind == "atom" or depth > 3:
        return draw(st.sampled_from(_ATOMS))
    if kind == "concat":
        parts = draw(st.lists(_pattern_pairs(depth + 1), min_size=2, max_size=3))
        return "".join(p for p, _ in parts), "".join(q for _, q in parts)
    if kind == "alt":
        parts = draw(st.lists(_pattern_pairs(depth + 1), min_size=2, max_size=3))
        return "|".join(p for p, _ in parts), "|".join(q for _, q in parts)
    inner, py_inner = draw(_pattern_pairs(depth + 1))
    if kind == "group":
        return f"(?:{inner})", f"(?:{py_inner})"
    op = draw(st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}", "*?"]))
    return f"(?:{inner}){op}", f"(?:{py_inner}){op}"


@settings(max_examples=examples(120), deadline=None)
@given(_pattern_pairs(), st.text("ab \n", max_size=8))
def test_agrees_with_python_re_on_shared_syntax(pair, text):
    pattern, python_pattern = pair
    expected = re.search(python_pattern, text, re.ASCII) is not None
    assert compile_regex(pattern).search(text) is expected
