"""What the integration and end-to-end suites share: waiting for what settles asynchronously,
a free port, the platform published as a maintainer publishes it (through the one local
platform), and what a customer fills in for the Workers product."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localaws.harness import LocalAwsHandle

from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local import platform
from valohai_hybrid.local.standin import ReceivedEvent, StandIn
from valohai_hybrid.publish import Published

#: How long to wait for what the redelivery consumer does: its queue's visibility timeout (the
#: platform's redelivery interval, 30 s here), so that one failed attempt is offered again (a
#: consumer that runs past its 5 s timeout on a loaded machine fails its whole batch), one
#: attempt's budget and some slack.
REDELIVERY_WAIT = 75.0


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (asynchronous deliveries settle)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on, for a server that must know it before it starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def publish_release(
    local_aws: LocalAwsHandle, region: str, project_dir: Path = ROOT, **options: Any
) -> Published:
    """`valohai-hybrid publish` (quietly) of `project_dir` against the local AWS: the one local
    platform's way (`valohai_hybrid.local.platform`)."""
    return platform.publish_release(
        local_aws, platform.publish_options(region, project_dir=project_dir, **options)
    )


def events_of(
    standin: StandIn, stack_id: str | None, event_type: str | None = None
) -> list[ReceivedEvent]:
    """What the stand-in accepted (signature verified) about one stack, oldest first."""
    return [e for e in standin.receiver.events(event_type) if e.body["stack"]["id"] == stack_id]


def workers_parameters(
    *, master_role_arn: str, valohai_url: str, setup_token: str, key_pair: str, suffix: str
) -> dict[str, str]:
    """What a customer fills in for the Workers product; `suffix` names its queue address,
    data bucket and Redis secret, so that launches side by side do not collide."""
    return {
        "ValohaiMasterRoleARN": master_role_arn,
        "QueueAddress": f"{suffix}.vqueue.net",
        "SetupToken": setup_token,
        "KeyPair": key_pair,
        "ValohaiApiUrl": valohai_url,
        "Suffix": suffix,
        "RedisSecretName": f"ValohaiRedisSecret-{suffix}",
    }
