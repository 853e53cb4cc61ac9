"""The test suite: ``unit/`` (the fast lane, ``./dev test -m "not slow"``) and ``e2e/`` (real
Dagster runs, processes and servers), with the helpers both share at this level."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: README, docker/, deploy/ and the workspace are found from here."""
