"""The reference holder (``commonid wallet``): a wallet for tests, the demo and integrators."""
