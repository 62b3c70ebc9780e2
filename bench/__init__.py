"""Benchmarks that print JSON figures (`make bench`)."""
