"""Benchmarks for crm-keys (`make bench`): never collected by the test suite."""
