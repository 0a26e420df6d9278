"""Tests of the did package: DIDs, credentials, status lists, presentations."""
