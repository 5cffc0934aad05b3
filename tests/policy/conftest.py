from __future__ import annotations

import pytest

from service.policy import load_policies


@pytest.fixture(scope="session")
def policies():
    """The shipped policy files and label data, loaded as the service loads them at start-up."""
    return load_policies(default_policy="fda-label")
