"""End-to-end tests: real Dagster runs, the CLI and its processes, servers and emulators
(marked ``slow`` by the package's conftest; ``./dev test -m "not slow"`` leaves them out)."""
