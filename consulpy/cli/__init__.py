"""The `consulpy` command line: `agent` runs an agent, the rest are HTTP clients of one."""
