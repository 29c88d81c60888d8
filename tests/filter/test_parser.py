"""Parser: every operator, precedence, parentheses, selector and value forms, error messages,
and a render/parse round trip on random trees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.filter.errors import FilterError
from consulpy.filter.nodes import And, Match, MatchOp, Not, Or, Selector, Value, render
from consulpy.filter.parser import MAX_DEPTH, parse
from tests.filter.budget import examples


def sel(*path: str, pointer: bool = False) -> Selector:
    return Selector(tuple(path), pointer)


def m(path: str, op: MatchOp, raw: str | None = None, kind: str = "identifier") -> Match:
    return Match(sel(*path.split(".")), op, None if raw is None else Value(raw, kind))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Node == n1", m("Node", MatchOp.EQUAL, "n1")),
        ("Node==n1", m("Node", MatchOp.EQUAL, "n1")),
        ("Node != n1", m("Node", MatchOp.NOT_EQUAL, "n1")),
        ("Tags is empty", m("Tags", MatchOp.IS_EMPTY)),
        ("Tags is not empty", m("Tags", MatchOp.IS_NOT_EMPTY)),
        ("v1 in Tags", m("Tags", MatchOp.IN, "v1")),
        ("v1 not in Tags", m("Tags", MatchOp.NOT_IN, "v1")),
        ("Tags contains v1", m("Tags", MatchOp.IN, "v1")),
        ("Tags not contains v1", m("Tags", MatchOp.NOT_IN, "v1")),
        ('Name matches "^web"', m("Name", MatchOp.MATCHES, "^web", "string")),
        ('Name not matches "^web"', m("Name", MatchOp.NOT_MATCHES, "^web", "string")),
        ("Port == 8080", m("Port", MatchOp.EQUAL, "8080", "number")),
        ("Port == -1.5", m("Port", MatchOp.EQUAL, "-1.5", "number")),
        ("Flag == true", m("Flag", MatchOp.EQUAL, "true")),
        ("Name == `raw\\n`", m("Name", MatchOp.EQUAL, "raw\\n", "string")),
        # a bare dotted value is its dotted text, as go-bexpr's grammar reads a selector there
        ("Version == v1.2", m("Version", MatchOp.EQUAL, "v1.2")),
        ("(Node == n1)", m("Node", MatchOp.EQUAL, "n1")),
        ("  ( ( Node == n1 ) )  ", m("Node", MatchOp.EQUAL, "n1")),
    ],
)
def test_match_forms(source, expected):
    assert parse(source) == expected


@pytest.mark.parametrize(
    ("source", "path", "pointer"),
    [
        ("Service.Meta.env", ("Service", "Meta", "env"), False),
        ('Service.Meta["x-y"]', ("Service", "Meta", "x-y"), False),
        ("Service.Meta[`a.b`]", ("Service", "Meta", "a.b"), False),
        ('Meta[ "spaced" ]', ("Meta", "spaced"), False),
        ('Meta["a"]["b"].c', ("Meta", "a", "b", "c"), False),
        ("Meta.123", ("Meta", "123"), False),
        ('"/Service/Meta/env"', ("Service", "Meta", "env"), True),
        ('"/Meta/x-y.z~1w~0v"', ("Meta", "x-y.z/w~v"), True),
    ],
)
def test_selector_forms(source, path, pointer):
    expr = parse(f"{source} is empty")
    assert expr == Match(Selector(path, pointer), MatchOp.IS_EMPTY, None)


def test_quoted_non_pointer_string_is_a_value_not_a_selector():
    assert parse('"/a b" in Tags') == m("Tags", MatchOp.IN, "/a b", "string")
    assert parse('"/web" in Tags') == m("Tags", MatchOp.IN, "/web", "string")
    assert parse('"" in Tags') == m("Tags", MatchOp.IN, "", "string")


def test_precedence_not_over_and_over_or():
    a, b, c = (m(x, MatchOp.EQUAL, "1", "number") for x in "abc")
    assert parse("a == 1 or b == 1 and c == 1") == Or((a, And((b, c))))
    assert parse("a == 1 and b == 1 or c == 1") == Or((And((a, b)), c))
    assert parse("not a == 1 and b == 1") == And((Not(a), b))
    assert parse("not a == 1 or b == 1") == Or((Not(a), b))
    assert parse("(a == 1 or b == 1) and c == 1") == And((Or((a, b)), c))
    assert parse("not (a == 1 or b == 1)") == Not(Or((a, b)))
    assert parse("a == 1 and b == 1 and c == 1") == And((a, b, c))
    assert parse("a == 1 or (b == 1 or c == 1)") == Or((a, Or((b, c))))


def test_double_negation_collapses():
    assert parse("not not a == 1") == m("a", MatchOp.EQUAL, "1", "number")
    assert parse("not not not a == 1") == Not(m("a", MatchOp.EQUAL, "1", "number"))


def test_keywords_are_not_reserved():
    # go-bexpr's PEG grammar reads these, trying `not` as an operator first
    assert parse("not in Tags") == m("Tags", MatchOp.IN, "not")
    assert parse("not not in Tags") == Not(m("Tags", MatchOp.IN, "not"))
    assert parse("and == or") == m("and", MatchOp.EQUAL, "or")
    assert parse("in in in") == m("in", MatchOp.IN, "in")
    assert parse("is is empty") == m("is", MatchOp.IS_EMPTY)
    assert parse("Status == not") == m("Status", MatchOp.EQUAL, "not")
    assert parse("AND == x") == m("AND", MatchOp.EQUAL, "x")  # keywords are lower case


def test_long_chains_do_not_recurse():
    source = " and ".join(f"a{i} == {i}" for i in range(5000))
    expr = parse(source)
    assert isinstance(expr, And)
    assert len(expr.operands) == 5000


def test_nesting_limit():
    ok = "(" * MAX_DEPTH + "a == 1" + ")" * MAX_DEPTH
    assert parse(ok) == m("a", MatchOp.EQUAL, "1", "number")
    with pytest.raises(FilterError, match="nests too deeply"):
        parse("(" * (MAX_DEPTH + 1) + "a == 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(FilterError, match="nests too deeply"):
        parse("not " * (MAX_DEPTH + 1) + "a == 1")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "a ==",
            "1:5 (4): no match found at end of input, expected: value",
        ),
        (
            "a = b",
            '1:3 (2): no match found at \'=\', expected: "==", "!=", "contains", '
            '"matches", "is", "not" or "in"',
        ),
        (
            "Node == host-name",
            '1:13 (12): no match found at \'-\', expected: "and", "or" or end of input '
            "(a value holding characters such as '-' must be quoted)",
        ),
        (
            "a == b c == d",
            '1:8 (7): no match found at \'c\', expected: "and", "or" or end of input',
        ),
        (
            "a == b and",
            '1:11 (10): no match found at end of input, expected: selector, value, "(" or "not"',
        ),
        (
            "(a == b",
            '1:8 (7): no match found at end of input, expected: ")", "and" or "or"',
        ),
        (
            "a == b)",
            '1:7 (6): no match found at \')\', expected: "and", "or" or end of input',
        ),
        (
            "== b",
            '1:1 (0): no match found at \'==\', expected: selector, value, "(" or "not"',
        ),
        ("a is", '1:5 (4): no match found at end of input, expected: "empty" or "not"'),
        ("a is not", '1:9 (8): no match found at end of input, expected: "empty"'),
        ("a not b", '1:7 (6): no match found at \'b\', expected: "contains", "matches" or "in"'),
        ('"x" == a', '1:5 (4): no match found at \'==\', expected: "in" or "not"'),
        ("5 in", "1:5 (4): no match found at end of input, expected: selector"),
        ('a == "unterminated', "1:6 (5): Unterminated string literal"),
        ("a == 1x", "1:6 (5): Invalid number literal"),
        ("a == 1.5.2", "1:6 (5): Invalid number literal"),
        ("a == 0x10", "1:6 (5): Invalid number literal"),
        ("Meta[x] == 1", "1:6 (5): Invalid index"),
        ('Meta["x" == 1', "1:10 (9): Unclosed index expression"),
        (
            "a == 1\nand b =! 2",
            '2:7 (13): no match found at \'=\', expected: "==", "!=", '
            '"contains", "matches", "is", "not" or "in"',
        ),
        ("", '1:1 (0): no match found at end of input, expected: selector, value, "(" or "not"'),
        (
            "   ",
            '1:4 (3): no match found at end of input, expected: selector, value, "(" or "not"',
        ),
    ],
)
def test_syntax_errors(source, message):
    with pytest.raises(FilterError) as info:
        parse(source)
    assert str(info.value) == message
    assert info.value.offset is not None


def test_selector_parts_must_touch():
    # `Meta . env` and `Meta ["env"]` are not selectors: the parts must touch
    with pytest.raises(FilterError, match=r"no match found at '\.'"):
        parse("Meta . env == x")
    with pytest.raises(FilterError, match=r"no match found at '\['"):
        parse('Meta ["env"] == x')


def test_render_examples():
    assert render(parse('Meta["x-y"] == `v` and not "a" in Tags')) == (
        'Meta["x-y"] == "v" and not "a" in Tags'
    )
    assert render(parse("(a == 1 or b == 2) and c is not empty")) == (
        '(a == "1" or b == "2") and c is not empty'
    )
    assert render(parse('"/Meta/a~1b" != x')) == '"/Meta/a~1b" != "x"'


# -- round trip: any tree renders to text that parses back to the same tree --------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_identifiers = st.builds(
    str.__add__, st.sampled_from(_LETTERS), st.text(_LETTERS + "0123456789_", max_size=6)
)
_keys = st.one_of(_identifiers, st.text(min_size=1, max_size=6))
_pointer_keys = st.text(_LETTERS + "0123456789_.:|~/-", min_size=1, max_size=6)


@st.composite
def _selectors(draw):
    if draw(st.booleans()):
        return Selector(tuple(draw(st.lists(_pointer_keys, min_size=1, max_size=3))), True)
    head = draw(_identifiers)
    return Selector((head, *draw(st.lists(_keys, max_size=3))))


_values = st.builds(Value, st.text(max_size=8), st.just("string"))


@st.composite
def _matches(draw):
    op = draw(st.sampled_from(list(MatchOp)))
    value = draw(_values) if op.takes_value else None
    return Match(draw(_selectors()), op, value)


def _negate(expr):
    # the parser folds `not not x` into x, so never build a double negation
    return expr.operand if isinstance(expr, Not) else Not(expr)


def _flatten(children, cls):
    return cls(tuple(children))


_trees = st.recursive(
    _matches(),
    lambda inner: st.one_of(
        st.builds(_negate, inner),
        st.builds(_flatten, st.lists(inner, min_size=2, max_size=3), st.just(And)),
        st.builds(_flatten, st.lists(inner, min_size=2, max_size=3), st.just(Or)),
    ),
    max_leaves=8,
)


@settings(max_examples=examples(60), deadline=None)
@given(_trees)
def test_render_parse_round_trip(tree):
    assert parse(render(tree)) == tree
