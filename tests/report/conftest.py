"""Report test fixtures live in builders.py so the evidence tests can share them."""

from tests.report.builders import loaded, test_catalogue, two_runs  # noqa: F401 (pytest fixtures)
