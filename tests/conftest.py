"""Shared test harness. Fixture modules live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.pcsc",
    "tests.fixtures.oidc",
    "tests.fixtures.database",
    "tests.fixtures.jpki",
    "tests.fixtures.card",
    "tests.fixtures.service",
]
