"""What the integration and end-to-end suites share: waiting for what settles asynchronously,
a free port, the platform published as a maintainer publishes it, and what a customer
fills in for the Workers product.

Imported as `tests.support`: pytest's pythonpath (pyproject.toml) has the checkout's root.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from valohai_hybrid.localaws.testing import LocalAwsHandle
from valohai_hybrid.publish import Published, PublishOptions, publish
from valohai_hybrid.standin import DEVELOPMENT_PLATFORM, ReceivedEvent, StandIn

ROOT = Path(__file__).resolve().parents[1]


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


@contextmanager
def pointed_at(local_aws: LocalAwsHandle) -> Iterator[None]:
    """AWS_ENDPOINT_URL at the local AWS while publishing: how a maintainer runs the demo."""
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = local_aws.endpoint_url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


def publish_release(
    local_aws: LocalAwsHandle, region: str, project_dir: Path = ROOT, **options: Any
) -> Published:
    """`valohai-hybrid publish` (quietly) of `project_dir` against the local AWS, as a
    development platform (its setups may report to the stand-in on 127.0.0.1)."""
    options["parameters"] = {**DEVELOPMENT_PLATFORM, **options.get("parameters", {})}
    with pointed_at(local_aws):
        return publish(
            PublishOptions(
                project_dir=project_dir,
                region=region,
                sam=ROOT / ".tools" / "sam" / "bin" / "sam",
                verbose=False,
                **options,
            ),
            log=lambda _: None,
        )


def delete_platform(local_aws: LocalAwsHandle, published: Published) -> None:
    """Delete the platform stack `publish_release` made, and check that it is gone."""
    cloudformation = local_aws.client("cloudformation", published.region)
    (stack,) = cloudformation.describe_stacks(StackName=published.stack_name)["Stacks"]
    cloudformation.delete_stack(StackName=stack["StackId"])
    deleted = local_aws.wait_for_stack(stack["StackId"], region=published.region)
    assert deleted["StackStatus"] == "DELETE_COMPLETE", deleted.get("StackStatusReason")


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
