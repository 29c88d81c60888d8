"""The agent's watches are replaced through `apply_watches` (registered in agent.reload_hooks),
and a bad definition on reload is refused with the running watches left alone."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import aiohttp
import pytest

from consulpy.agent.watches import WatchError
from consulpy.testing import DevAgent
from tests.helpers import eventually
from tests.watch.test_watch import RECORDER, records


def watch(tmp: Path, out: str, key: str) -> dict[str, object]:
    recorder = tmp / "recorder.py"
    recorder.write_text(RECORDER)
    return {"type": "key", "key": key, "args": [sys.executable, str(recorder), str(tmp / out)]}


async def test_apply_watches_replaces_the_running_watches(tmp_path: Path) -> None:
    async with DevAgent(config={"watches": [watch(tmp_path, "old.jsonl", "a")]}) as dev:
        agent = dev.agent
        assert agent is not None
        assert agent.apply_watches in agent.reload_hooks
        await eventually(lambda: records(tmp_path / "old.jsonl"), what="first fire of old watch")
        new_cfg = dataclasses.replace(agent.config, watches=[watch(tmp_path, "new.jsonl", "b")])
        bad_cfg = dataclasses.replace(agent.config, watches=[{"type": "key"}])
        with pytest.raises(WatchError, match="Must specify a single key"):
            agent.apply_watches(bad_cfg)
        for hook in agent.reload_hooks:
            hook(new_cfg)
        await eventually(lambda: records(tmp_path / "new.jsonl"), what="first fire of new watch")
        async with aiohttp.ClientSession() as http:
            for key in ("a", "b"):
                async with http.put(f"{dev.url}/v1/kv/{key}", data=b"v") as resp:
                    assert resp.status == 200
        await eventually(
            lambda: any(r["payload"] for r in records(tmp_path / "new.jsonl")), what="new fired"
        )
        # the old watch was stopped: it never saw the write to "a"
        assert all(r["payload"] is None for r in records(tmp_path / "old.jsonl"))
        assert json.dumps(records(tmp_path / "new.jsonl")[-1]["payload"]["Key"]) == '"b"'
