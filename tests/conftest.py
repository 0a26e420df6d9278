"""Shared test harness. Fixture modules live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.pcsc",
    "tests.fixtures.database",
    "tests.fixtures.jpki",
    "tests.fixtures.card",
    "tests.fixtures.service",
    "tests.fixtures.oidc",
]
