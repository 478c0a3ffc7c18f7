"""Shared test helpers."""

import importlib.util

import pytest


def require_package(name: str):
    """Skip a test when an optional package is not installed."""
    return pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed")
