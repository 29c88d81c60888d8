"""Property tests: on random objects, `not`, `and` and `or` follow boolean algebra, each
negated operator is the complement of its operator (outside lists), and apply/apply_map agree
with matches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consulpy.filter import ListOf, MapOf, compile_filter, struct
from tests.filter.budget import examples

SCHEMA = struct(
    Name=str,
    Port=int,
    On=bool,
    Tags=ListOf(str),
    Meta=MapOf(str),
    Checks=ListOf(struct(Status=str, Tags=ListOf(str))),
)

_WORDS = ["", "a", "b", "web", "db"]
_words = st.sampled_from(_WORDS)
_statuses = st.sampled_from(["passing", "warning", "critical"])

objects = st.fixed_dictionaries(
    {},
    optional={
        "Name": _words,
        "Port": st.integers(0, 3),
        "On": st.booleans(),
        "Tags": st.one_of(st.none(), st.lists(_words, max_size=3)),
        "Meta": st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b"]), _words)),
        "Checks": st.lists(
            st.fixed_dictionaries({"Status": _statuses}, optional={"Tags": st.lists(_words)}),
            max_size=3,
        ),
    },
)

_value = st.sampled_from(['""', "a", "b", "web", "db", "`^w`", '"b$"'])

# (positive form, negated form) pairs over fields outside lists
_PAIRS = [
    ("Name == {v}", "Name != {v}"),
    ("Name contains {v}", "Name not contains {v}"),
    ("Name matches {v}", "Name not matches {v}"),
    ("Name is empty", "Name is not empty"),
    ("Port == {n}", "Port != {n}"),
    ("On == {b}", "On != {b}"),
    ("{v} in Tags", "{v} not in Tags"),
    ("Tags is empty", "Tags is not empty"),
    ("{v} in Meta", "{v} not in Meta"),
    ("Meta is empty", "Meta is not empty"),
    ("Meta.a == {v}", "Meta.a != {v}"),
    ("Meta.a matches {v}", "Meta.a not matches {v}"),
    ("Meta.b is empty", "Meta.b is not empty"),
    ("Checks is empty", "Checks is not empty"),
]
# forms that look through a list: any element
_THROUGH_LISTS = [
    "Checks.Status == {s}",
    "Checks.Status != {s}",
    "{v} in Checks.Tags",
    "Checks.Tags is empty",
    "Checks.Status matches {v}",
]


@st.composite
def match_pairs(draw):
    positive, negative = draw(st.sampled_from(_PAIRS))
    fill = {
        "v": draw(_value),
        "n": draw(st.integers(0, 3)),
        "b": draw(st.sampled_from(["true", "false"])),
        "s": draw(_statuses),
    }
    return positive.format(**fill), negative.format(**fill)


@st.composite
def atoms(draw):
    if draw(st.integers(0, 3)) == 0:
        form = draw(st.sampled_from(_THROUGH_LISTS))
        return form.format(v=draw(_value), s=draw(_statuses))
    return draw(st.sampled_from(draw(match_pairs())))


expressions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.builds(lambda a: f"not ({a})", inner),
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
    ),
    max_leaves=6,
)

schemas = st.sampled_from([SCHEMA, None])


def holds(expression, schema, obj):
    return compile_filter(expression, schema).matches(obj)


@settings(max_examples=examples(80), deadline=None)
@given(expressions, expressions, schemas, objects)
def test_boolean_algebra(a, b, schema, obj):
    va, vb = holds(a, schema, obj), holds(b, schema, obj)
    assert holds(f"not ({a})", schema, obj) is (not va)
    assert holds(f"not not ({a})", schema, obj) is va
    assert holds(f"({a}) and ({b})", schema, obj) is (va and vb)
    assert holds(f"({a}) or ({b})", schema, obj) is (va or vb)
    assert holds(f"not (({a}) and ({b}))", schema, obj) is holds(
        f"not ({a}) or not ({b})", schema, obj
    )
    assert holds(f"not (({a}) or ({b}))", schema, obj) is holds(
        f"not ({a}) and not ({b})", schema, obj
    )
    assert holds(f"({a}) and ({a})", schema, obj) is va
    assert holds(f"({a}) or not ({a})", schema, obj) is True


@settings(max_examples=examples(120), deadline=None)
@given(match_pairs(), objects)
def test_negated_operator_is_the_complement_outside_lists(pair, obj):
    positive, negative = pair
    assert holds(negative, SCHEMA, obj) is (not holds(positive, SCHEMA, obj))


@settings(max_examples=examples(40), deadline=None)
@given(expressions, schemas, st.lists(objects, max_size=5))
def test_apply_and_apply_map_agree_with_matches(expression, schema, objs):
    f = compile_filter(expression, schema)
    expected = [obj for obj in objs if f.matches(obj)]
    assert f.apply(objs) == expected
    keyed = {str(i): obj for i, obj in enumerate(objs)}
    assert list(f.apply_map(keyed).values()) == expected
