"""The `mla` binary the Python tests run: $MLA_CLI, which ctest sets."""
import os

import pytest


def cli():
    path = os.environ.get("MLA_CLI")
    if not path:
        pytest.fail("MLA_CLI is not set: run through ctest, or export MLA_CLI=build/mla")
    return path
