"""Every test runs with fake credentials and a fixed region, whatever the machine has."""

from __future__ import annotations

import os

from valohai_hybrid.localaws.testing import DEFAULT_REGION, FAKE_CREDENTIALS

for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update(FAKE_CREDENTIALS)
os.environ["AWS_DEFAULT_REGION"] = DEFAULT_REGION
os.environ["AWS_REGION"] = DEFAULT_REGION
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
