"""A server drops the HCL parser after start-up (issue 21 goal 3); later parses still work."""

from __future__ import annotations

import hcl2.parser

from consulpy.config.hcl import parse_hcl, release_parser


def test_parsing_after_the_parser_was_released_builds_it_again() -> None:
    assert parse_hcl('datacenter = "a"', "first") == {"datacenter": "a"}
    release_parser()
    assert hcl2.parser.parser.cache_info().currsize == 0
    assert parse_hcl("performance { raft_multiplier = 1 }", "again") == {
        "performance": [{"raft_multiplier": 1}]
    }
