"""The one local platform: what the demo, the benchmarks and the test suites all run.

A local AWS and the Valohai API stand-in (sharing the local CA, so the functions trust it) on
127.0.0.1; the platform published by `valohai_hybrid.publish`, the code path of
`valohai-hybrid publish` (sam build builds the function packages, as for AWS); a customer
admin, an IAM user with an access key of its own, AWSServiceCatalogEndUserFullAccess and a
principal association with the portfolio (what the README asks of a customer admin), launching
through Service Catalog as `valohai-hybrid launch` does; and everything stopped at the end.
Fake credentials only: nothing here reaches AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from localaws.config import FAKE_CREDENTIALS
from localaws.harness import LocalAwsHandle, isolate_environment, running_local_aws

from valohai_hybrid.catalog import Catalog
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local.standin import DEVELOPMENT_PLATFORM, StandIn
from valohai_hybrid.publish import Published, PublishOptions, publish

DEFAULT_REGION = "eu-west-1"
_POINTING = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")
#: What the README asks of a customer admin in IAM, besides the portfolio's principal association.
END_USER_POLICY = "arn:aws:iam::aws:policy/AWSServiceCatalogEndUserFullAccess"


@dataclass
class Customer:
    """An IAM user of the local account with its own access key: the local AWS tells callers
    apart by key, as Service Catalog's launch paths and IAM's checks need. `create` gives it
    the IAM rights of a customer admin (`END_USER_POLICY`); the platform's principals give it
    the portfolio."""

    arn: str
    session: boto3.Session
    endpoint_url: str
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, aws: LocalAwsHandle, prefix: str, region: str = DEFAULT_REGION) -> Customer:
        """A new user named `prefix` and a suffix of its own, with what AWS's documentation
        gives a portfolio's end user (AWSServiceCatalogEndUserFullAccess: Service Catalog's
        end-user actions, and reading the launched stacks, which `update` does, among others)."""
        arn, session = aws.iam_user(prefix, region, policies=(END_USER_POLICY,))
        return cls(arn, session, aws.endpoint_url)

    @classmethod
    def account(cls, aws: LocalAwsHandle, region: str = DEFAULT_REGION) -> Customer:
        """The account's own identity (the fake credentials): what a maintainer signs with."""
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        return cls("", session, aws.endpoint_url)

    def client(self, service: str) -> Any:
        """One client per service, shared by threads (boto3 clients are thread-safe; creating
        them is not)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
            )
        return self._clients[service]

    def in_region(self, region: str) -> Customer:
        """The same user, working in another region."""
        credentials = self.session.get_credentials()
        assert credentials is not None
        session = boto3.Session(
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            region_name=region,
        )
        return Customer(self.arn, session, self.endpoint_url)

    def catalog(self, timeout: float = 600.0, *, poll_seconds: float = 0.1) -> Catalog:
        """Service Catalog as this user; `wait` gives up (StillRunning) after `timeout` s."""
        return Catalog(self.client, poll_seconds=poll_seconds, timeout=timeout)


@contextmanager
def pointed_at(aws: LocalAwsHandle, region: str) -> Iterator[None]:
    """This process and what it starts (sam) at the local AWS, with fake credentials, until
    the block ends; the environment is restored afterwards."""
    saved = dict(os.environ)
    isolate_environment(region)
    os.environ["AWS_ENDPOINT_URL"] = aws.endpoint_url
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def publish_options(
    region: str = DEFAULT_REGION,
    *,
    project_dir: Path = ROOT,
    sam: Path | None = None,
    **choices: Any,
) -> PublishOptions:
    """What `valohai-hybrid publish` is given for a local platform (quietly; sam: publish's
    default, the project's .tools/sam, unless given): a development platform, whose setups may
    report to the stand-in on 127.0.0.1, with `parameters` given over that."""
    parameters = {**DEVELOPMENT_PLATFORM, **choices.pop("parameters", {})}
    return PublishOptions(
        project_dir=project_dir,
        region=region,
        sam=sam,
        verbose=False,
        parameters=parameters,
        **choices,
    )


def publish_release(
    aws: LocalAwsHandle,
    options: PublishOptions,
    log: Callable[[str], None] = lambda _: None,
) -> Published:
    """`valohai-hybrid publish` against the local AWS: a release, sam build, sam deploy."""
    with pointed_at(aws, options.region or DEFAULT_REGION):
        return publish(options, log=log)


def delete_platform(aws: LocalAwsHandle, published: Published) -> None:
    """Delete the platform stack `publish_release` made; raise if it is not gone."""
    cloudformation = aws.client("cloudformation", published.region)
    (stack,) = cloudformation.describe_stacks(StackName=published.stack_name)["Stacks"]
    cloudformation.delete_stack(StackName=stack["StackId"])
    deleted = aws.wait_for_stack(stack["StackId"], region=published.region)
    if deleted["StackStatus"] != "DELETE_COMPLETE":
        raise RuntimeError(
            f"platform stack {published.stack_name}: {deleted['StackStatus']} "
            f"({deleted.get('StackStatusReason')})"
        )


@dataclass
class LocalPlatform:
    """A running local AWS and stand-in, the platform published, and a customer admin."""

    aws: LocalAwsHandle
    standin: StandIn
    admin: Customer
    published: Published


@contextmanager
def services(
    state_dir: Path,
    tokens: Sequence[str],
    *,
    stabilize: Mapping[str, float] | None = None,
) -> Iterator[tuple[LocalAwsHandle, StandIn]]:
    """The local AWS and the stand-in (accepting `tokens`), stopped when the block ends."""
    with (
        running_local_aws(state_dir, stabilize=stabilize) as aws,
        StandIn(list(tokens), aws.state_dir) as standin,
    ):
        yield aws, standin


@contextmanager
def local_platform(
    state_dir: Path,
    tokens: Sequence[str],
    *,
    region: str = DEFAULT_REGION,
    admin: str = "customer-admin",
    stabilize: Mapping[str, float] | None = None,
    **choices: Any,
) -> Iterator[LocalPlatform]:
    """Start the services, make the customer admin, publish this checkout's release with the
    admin as a principal; stop everything when the block ends."""
    with services(state_dir, tokens, stabilize=stabilize) as (aws, standin):
        customer = Customer.create(aws, admin, region)
        options = publish_options(region, principals=[customer.arn], **choices)
        yield LocalPlatform(aws, standin, customer, publish_release(aws, options))
