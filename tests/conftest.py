"""Shared test set-up. Desktop fixtures (Xvfb, trayer, Secret Service) live in
tests/fixtures/desktop.py."""
pytest_plugins = ["tests.fixtures.desktop", "tests.fixtures.kernel"]
