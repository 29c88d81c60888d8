"""The checker's lock kinds accept a real lock history and refute a double grant."""

from __future__ import annotations

from tests.raft.linearizability import INF, Op, check_key


def test_sequential_acquire_release_by_two_sessions_is_linearizable() -> None:
    ops = [
        Op(1, 1, "acquire_ok", "l", "a", 0, 1),
        Op(2, 2, "acquire_fail", "l", "b", 2, 3),
        Op(3, 1, "acquire_ok", "l", "a", 4, 5),  # re-acquire by the holder succeeds
        Op(4, 2, "get", "l", "a", 6, 7),
        Op(5, 1, "release_ok", "l", "a", 8, 9),
        Op(6, 2, "release_fail", "l", "b", 10, 11),
        Op(7, 2, "acquire_ok", "l", "b", 12, 13),
    ]
    assert check_key(ops)


def test_two_holders_at_once_are_refuted() -> None:
    ops = [
        Op(1, 1, "acquire_ok", "l", "a", 0, 1),
        Op(2, 2, "acquire_ok", "l", "b", 2, 3),
    ]
    assert not check_key(ops)


def test_an_unanswered_acquire_may_explain_a_later_refusal() -> None:
    ops = [
        Op(1, 1, "acquire_unknown", "l", "a", 0, INF),
        Op(2, 2, "acquire_fail", "l", "b", 2, 3),
        Op(3, 2, "get", "l", "a", 4, 5),
    ]
    assert check_key(ops)
    refused_without_cause = [Op(2, 2, "acquire_fail", "l", "b", 2, 3)]
    assert not check_key(refused_without_cause)
