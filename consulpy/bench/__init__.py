"""Benchmarks run by `consulpy bench <name>`; each compares against a reference run."""
