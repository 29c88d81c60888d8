"""The auto_reload_config watcher, one poll at a time (no timer): which files count, one reload
per change, and a write made while a reload runs is not lost."""

from __future__ import annotations

from pathlib import Path

from consulpy.agent.config_watch import ConfigWatcher, watched_paths
from consulpy.config import AgentConfig, load_agent_config


def _load(main: Path, conf: Path, data: Path) -> AgentConfig:
    return load_agent_config(
        ["-data-dir", str(data), f"-config-file={main}", f"-config-dir={conf}"]
    )


async def test_polls_reload_once_per_change(tmp_path: Path) -> None:
    main, conf, data = tmp_path / "a.hcl", tmp_path / "conf", tmp_path / "data"
    conf.mkdir()
    data.mkdir()
    main.write_text('auto_reload_config = true\nnode_name = "n1"\n')
    (conf / "notes.txt").write_text("not a config file")
    current = [_load(main, conf, data)]
    reloads: list[str] = []
    edit_during_reload: list[Path] = []

    async def reload() -> None:
        current[0] = _load(main, conf, data)
        reloads.append(current[0].node_name)
        for path in edit_during_reload:
            path.write_text(path.read_text() + "\n# touched\n")
        edit_during_reload.clear()

    watcher = ConfigWatcher(lambda: current[0], reload)
    assert watched_paths(current[0]) == [str(main)]
    assert not await watcher.check()
    (conf / "notes.txt").write_text("still not one")  # not .hcl/.json: not watched
    assert not await watcher.check()
    (conf / "b.hcl").write_text('log_level = "debug"\n')
    assert await watcher.check() and reloads == ["n1"]
    assert str(conf / "b.hcl") in watched_paths(current[0])
    assert not await watcher.check()
    main.write_text('auto_reload_config = true\nnode_name = "n2"\n')
    edit_during_reload.append(conf / "b.hcl")
    assert await watcher.check() and reloads == ["n1", "n2"]
    assert await watcher.check()  # the write made during that reload: one more
    assert not await watcher.check()
    assert len(reloads) == 3


async def test_a_file_added_while_a_reload_runs_is_applied_next(tmp_path: Path) -> None:
    main, conf, data = tmp_path / "a.hcl", tmp_path / "conf", tmp_path / "data"
    conf.mkdir()
    data.mkdir()
    main.write_text('auto_reload_config = true\nnode_name = "n1"\n')
    current = [_load(main, conf, data)]
    applied: list[list[str]] = []

    async def reload() -> None:
        current[0] = _load(main, conf, data)
        applied.append(sorted(Path(p).name for p in current[0].config_files))
        if len(applied) == 1:  # a client adds a file after the config was read
            (conf / "db.hcl").write_text('log_level = "debug"\n')

    watcher = ConfigWatcher(lambda: current[0], reload)
    main.write_text('auto_reload_config = true\nnode_name = "n2"\n')
    assert await watcher.check()
    assert "db.hcl" not in applied[-1]
    assert await watcher.check()  # the new file: read by the next reload, not taken as seen
    assert "db.hcl" in applied[-1]
    assert not await watcher.check()
