"""The public entry points: load an agent's configuration, or just validate files.

Sources are merged in Consul's order, later winning:

1. built-in defaults, then the `-dev` defaults when `-dev` is given;
2. list-valued flags (`-retry-join`, `-join`, `-recursor`, ...): Consul puts them here, so their
   items come *before* the items of the same list from files;
3. config files and directories, in the order given on the command line;
4. `extra_sources` (dicts; tests and embedders use them);
5. all other flags;
6. `-hcl` fragments, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from consulpy.config.builder import DEFAULTS_SOURCE, DEV_SOURCE, build_agent_config
from consulpy.config.defaults import DEFAULTS, DEV_DEFAULTS
from consulpy.config.deprecated import apply_deprecated
from consulpy.config.errors import ConfigError
from consulpy.config.flags import AgentFlags, FlagSource, parse_flags
from consulpy.config.keys import AGENT
from consulpy.config.merge import Provenance, merge_into
from consulpy.config.model import AgentConfig
from consulpy.config.schema import Ctx
from consulpy.config.sources import ConfigSource, parse_fragment, read_sources
from consulpy.util.goquote import go_quote


def load_agent_config(
    argv: Sequence[str], extra_sources: Sequence[Mapping[str, Any]] = ()
) -> AgentConfig:
    """Build the configuration of `consulpy agent <argv>`; ConfigError says what is wrong.

    `extra_sources` are dicts shaped like a JSON config file, merged after the files and before
    the flags; in them a duration may also be given as a number of seconds.
    """
    flags = parse_flags(list(argv))
    return _load(flags, extra_sources)


def load_config_files(paths: Sequence[str], config_format: str | None = None) -> list[ConfigSource]:
    """Read files and directories as -config-file/-config-dir would, each checked on its own.

    Each returned source holds that file's settings typed and normalised (blocks folded into
    maps, durations in seconds, services in API spelling, old keys renamed) but not merged
    with defaults or other files. ConfigError lists every problem in every file.
    """
    c = _Collector()
    files, _ = read_sources(list(paths), config_format)
    for file in files:
        c.add(file.name, file.data, f"Error parsing {file.name}")
    if c.errors:
        raise ConfigError(c.errors)
    return [ConfigSource(name, fragment) for name, fragment in c.fragments]


def validate_paths(paths: Sequence[str], config_format: str | None = None) -> list[str]:
    """Check that files/directories form a complete, valid agent configuration (what
    `consulpy validate` does). Returns [] when valid, else one message per problem."""
    if not paths:
        return ["Must specify at least one config file or directory"]
    flags = AgentFlags(config_paths=list(paths), config_format=config_format)
    try:
        _load(flags, ())
    except ConfigError as exc:
        return exc.errors
    return []


class _Collector:
    """Type-checks sources one by one, keeping every error and the good fragments."""

    def __init__(self) -> None:
        self.fragments: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def add(self, name: str, data: Mapping[str, Any], label: str, *, lenient: bool = False) -> None:
        ctx = Ctx(label, lenient_durations=lenient)
        fragment = AGENT.coerce(dict(data), "", ctx)
        if ctx.errors:
            self.errors.extend(ctx.errors)
            return
        self.warnings.extend(f"{name}: {w}" for w in apply_deprecated(fragment))
        self.fragments.append((name, fragment))

    def add_flag(self, source: FlagSource) -> None:
        self.add(
            f"flag -{source.flag}",
            source.data,
            f"Invalid value {go_quote(source.raw)} for flag -{source.flag}",
        )


def _load(flags: AgentFlags, extra_sources: Sequence[Mapping[str, Any]]) -> AgentConfig:
    c = _Collector()
    c.add(DEFAULTS_SOURCE, DEFAULTS, f"Error in {DEFAULTS_SOURCE}")
    if flags.dev:
        c.add(DEV_SOURCE, DEV_DEFAULTS, f"Error in {DEV_SOURCE}")
    for source in flags.list_sources:
        c.add_flag(source)
    files: list[ConfigSource] = []
    try:
        files, skipped = read_sources(flags.config_paths, flags.config_format)
        c.warnings.extend(skipped)
    except ConfigError as exc:
        c.errors.extend(exc.errors)
    for file in files:
        c.add(file.name, file.data, f"Error parsing {file.name}")
    for i, extra in enumerate(extra_sources):
        if not isinstance(extra, Mapping):
            c.errors.append(f"extra_sources[{i}]: expected a mapping, got {type(extra).__name__}")
            continue
        name = f"extra_sources[{i}]"
        c.add(name, extra, f"Error in {name}", lenient=True)
    for source in flags.value_sources:
        c.add_flag(source)
    for i, text in enumerate(flags.hcl):
        name = f"-hcl fragment #{i + 1}"
        try:
            fragment = parse_fragment(text, name)
        except ConfigError as exc:
            c.errors.extend(exc.errors)
            continue
        c.add(name, fragment.data, f"Error parsing {name}")
    if c.errors:
        raise ConfigError(c.errors)

    merged: dict[str, Any] = {}
    provenance = Provenance()
    for name, fragment in c.fragments:
        merge_into(merged, fragment, AGENT, name, provenance)
    return build_agent_config(
        merged,
        provenance,
        dev=flags.dev,
        config_files=[f.name for f in files],
        warnings=c.warnings,
        config_paths=list(flags.config_paths),
        config_format=flags.config_format,
    )
