"""`consulpy validate [-quiet] [-config-format=hcl|json] FILE_OR_DIRECTORY...`

Checks config files the way `consulpy agent` would load them (Consul's `consul validate`): the
files together must form a complete, valid agent configuration, so `data_dir` must be set.
Exit status 0 when valid, 1 otherwise.
"""

from __future__ import annotations

import sys

from consulpy.config import validate_paths

USAGE = """Usage: consulpy validate [options] FILE_OR_DIRECTORY...

  Performs a thorough sanity test on consulpy configuration files. For each file
  or directory given, the validate command parses the contents just as the
  "consulpy agent" command would, and reports any errors. Give it the complete
  set of configuration files the agent will load: partial fragments fail the
  full agent validation (data_dir, for one, must be set).

  Returns 0 if the configuration is valid, or 1 if there are problems.

Options:

  -config-format=<hcl|json>  Read the files in this format whatever their extension.
  -quiet                     When given, a successful run produces no output.
"""


def main(argv: list[str]) -> int:
    quiet = False
    config_format: str | None = None
    args = list(argv)
    paths: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            paths.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            paths.append(arg)
            paths.extend(args[i:])  # like Go's flag package: flags stop at the first path
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in ("h", "help"):
            print(USAGE)
            return 0
        if name == "quiet":
            if has_value and value not in ("true", "false", "1", "0"):
                print(f"Invalid value {value!r} for flag -quiet", file=sys.stderr)
                return 1
            quiet = not has_value or value in ("true", "1")
        elif name == "config-format":
            if not has_value:
                if i >= len(args):
                    print("Flag -config-format needs a value", file=sys.stderr)
                    return 1
                value = args[i]
                i += 1
            if value not in ("hcl", "json"):
                print("-config-format must be either 'hcl' or 'json'", file=sys.stderr)
                return 1
            config_format = value
        else:
            print(f"Unknown flag: {arg}\n\n{USAGE}", file=sys.stderr)
            return 1
    if not paths:
        print("Must specify at least one config file or directory", file=sys.stderr)
        return 1
    errors = validate_paths(paths, config_format)
    if errors:
        print("Config validation failed:", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    if not quiet:
        print("Configuration is valid!")
    return 0
