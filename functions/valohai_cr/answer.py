"""The one answer to CloudFormation: a PUT to the ResponseURL, bounded in time and tries.

An unreachable or hung ResponseURL must not hold the function until its Lambda deadline (crhelper
retried forever), so each try has a timeout, the tries share one budget, and only network
errors and 5xx are tried again: a 4xx (an expired or foreign URL) will not change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import urllib3

log = logging.getLogger(__name__)

#: At most this many PUTs per answer, and at most this many seconds for all of them.
TRIES = 3
BUDGET_SECONDS = 10.0
_PAUSE_SECONDS = 0.5


def put(url: str, body: Mapping[str, Any], *, seconds: float = BUDGET_SECONDS) -> bool:
    """PUT `body` to `url`; True once CloudFormation's bucket took it.

    Never raises: the caller has nothing better to do than log, which this does."""
    data = json.dumps(body).encode()
    deadline = time.monotonic() + seconds
    # A pool per answer: nothing of one request (connection, URL) outlives it.
    with urllib3.PoolManager(retries=False) as pool:
        for attempt in range(1, TRIES + 1):
            left = deadline - time.monotonic()
            if left <= 0.05:
                break
            try:
                response = pool.request(
                    "PUT",
                    url,
                    body=data,
                    # S3 presigned URLs are signed without a content type: send none.
                    headers={"Content-Type": "", "Content-Length": str(len(data))},
                    timeout=urllib3.Timeout(connect=min(3.0, left), read=left),
                    redirect=False,
                )
            except urllib3.exceptions.HTTPError as error:
                problem = f"{type(error).__name__}"
            else:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
                if response.status < 500:
                    log.error("The ResponseURL refused the answer (%s): not trying again", problem)
                    return False
            log.warning("Answer attempt %d of %d failed: %s", attempt, TRIES, problem)
            time.sleep(min(_PAUSE_SECONDS * attempt, max(0.0, deadline - time.monotonic())))
    log.error("CloudFormation's ResponseURL could not be reached: the answer was not delivered")
    return False
