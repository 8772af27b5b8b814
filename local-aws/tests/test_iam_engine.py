"""The IAM engine against AWS's documented evaluation examples, and its client's promises.

Each canary row is an example from AWS's IAM User Guide (the section is named in the row) and
the answer the guide gives. A row that fails means the engine (or our adapter around it) no
longer evaluates as AWS documents: fix the adapter, never the row. All rows share one engine
process (module fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from localaws.iam.engine import EngineError, Policy, PolicyEngine, Request

ACCOUNT = "111122223333"
OTHER = "444455556666"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    engine = PolicyEngine()
    yield engine
    engine.close()


def policy(*statements: dict[str, Any], name: str = "inline") -> Policy:
    return Policy(name, json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@dataclass(frozen=True)
class Row:
    """One documented example: the request, and whether AWS allows it."""

    source: str
    principal: str
    action: str
    resource: str
    identity: tuple[Policy, ...] = ()
    resource_policy: Policy | None = None
    boundary: Policy | None = None
    context: tuple[tuple[str, Any], ...] = ()
    allowed: bool = False
    account: str = ACCOUNT

    def request(self) -> Request:
        return Request(
            principal=self.principal,
            action=self.action,
            resource=self.resource,
            resource_account=self.account,
            identity_policies=self.identity,
            resource_policy=self.resource_policy,
            permission_boundary=self.boundary,
            context=Request.context_of(dict(self.context)),
        )


EVALUATION = "Policy evaluation logic: Determining whether a request is allowed within an account"
NOT_ACTION = "IAM JSON policy elements: NotAction"
NOT_RESOURCE = "IAM JSON policy elements: NotResource"
MULTIVALUED = "Multivalued context keys: ForAllValues (a missing key evaluates to true)"
CONDITION = "IAM JSON policy elements: Condition (a key missing from the request is false)"
IF_EXISTS = "Condition operators: ...IfExists condition operators"
CROSS_ACCOUNT = "Cross-account policy evaluation logic"
EXTERNAL_ID = "Access to AWS accounts owned by third parties (external ID)"
BOUNDARY = "Permissions boundaries for IAM entities: evaluating effective permissions"
WILDCARDS = "IAM JSON policy elements: Resource, using wildcards in resource ARNs"

BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:build-token-AbCdEf"
INSTANCE = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abcdef1234567890"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ThirdPartyAccess"
VENDOR_SESSION = f"arn:aws:sts::{OTHER}:assumed-role/Vendor/session"

everything = policy(allow("*"))
deny_s3 = policy(allow("*"), {"Sid": "NoS3", "Effect": "Deny", "Action": "s3:*", "Resource": "*"})
not_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
payroll_only = policy(
    allow("s3:*"),
    {
        "Effect": "Deny",
        "Action": "s3:*",
        "NotResource": [f"{BUCKET}/Payroll", f"{BUCKET}/Payroll/*"],
    },
)
tag_keys = policy(
    allow(
        "secretsmanager:CreateSecret",
        Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "Owner"]}},
    )
)
team_tag = policy(
    allow(
        "secretsmanager:GetSecretValue",
        Condition={"StringEquals": {"aws:ResourceTag/Team": "ml"}},
    )
)
small_instances = policy(
    allow(
        "ec2:RunInstances",
        Condition={"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
    )
)
read_bucket = policy(allow("s3:GetObject", f"{BUCKET}/*"))
bucket_for_other = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET}/*",
    }
)
trust_with_external_id = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "Unique-ID-1234"}},
    }
)
assume_any = policy(allow("sts:AssumeRole"))
s3_and_iam = policy(allow(["s3:*", "iam:*"]))
s3_boundary = policy(allow("s3:*"), name=f"arn:aws:iam::{ACCOUNT}:policy/S3Boundary")
ec2_in_account = policy(allow("ec2:*", f"arn:aws:ec2:*:{ACCOUNT}:*/*"))

ROWS = [
    Row(EVALUATION, ALICE, "s3:GetObject", f"{BUCKET}/a", (deny_s3,)),
    Row(
        EVALUATION,
        ALICE,
        "sqs:SendMessage",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:q",
        (deny_s3,),
        allowed=True,
    ),
    Row(EVALUATION, ALICE, "s3:GetObject", f"{BUCKET}/a"),
    Row(NOT_ACTION, ALICE, "s3:GetObject", f"{BUCKET}/a", (not_iam,), allowed=True),
    Row(NOT_ACTION, ALICE, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/bob", (not_iam,)),
    Row(
        NOT_RESOURCE, ALICE, "s3:GetObject", f"{BUCKET}/Payroll/june", (payroll_only,), allowed=True
    ),
    Row(NOT_RESOURCE, ALICE, "s3:GetObject", f"{BUCKET}/Other/june", (payroll_only,)),
    Row(MULTIVALUED, ALICE, "secretsmanager:CreateSecret", SECRET, (tag_keys,), allowed=True),
    Row(
        MULTIVALUED,
        ALICE,
        "secretsmanager:CreateSecret",
        SECRET,
        (tag_keys,),
        context=(("aws:TagKeys", ("Project",)),),
        allowed=True,
    ),
    Row(
        MULTIVALUED,
        ALICE,
        "secretsmanager:CreateSecret",
        SECRET,
        (tag_keys,),
        context=(("aws:TagKeys", ("Project", "CostCenter")),),
    ),
    Row(CONDITION, ALICE, "secretsmanager:GetSecretValue", SECRET, (team_tag,)),
    Row(
        CONDITION,
        ALICE,
        "secretsmanager:GetSecretValue",
        SECRET,
        (team_tag,),
        context=(("aws:ResourceTag/Team", "ml"),),
        allowed=True,
    ),
    Row(
        IF_EXISTS,
        ALICE,
        "ec2:RunInstances",
        INSTANCE,
        (small_instances,),
        context=(("ec2:InstanceType", "t2.micro"),),
        allowed=True,
    ),
    Row(
        IF_EXISTS,
        ALICE,
        "ec2:RunInstances",
        INSTANCE,
        (small_instances,),
        context=(("ec2:InstanceType", "m5.large"),),
    ),
    Row(
        IF_EXISTS,
        ALICE,
        "ec2:RunInstances",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-1",
        (small_instances,),
        allowed=True,
    ),
    Row(CROSS_ACCOUNT, VENDOR_SESSION, "s3:GetObject", f"{BUCKET}/a", (read_bucket,)),
    Row(
        CROSS_ACCOUNT,
        VENDOR_SESSION,
        "s3:GetObject",
        f"{BUCKET}/a",
        resource_policy=bucket_for_other,
    ),
    Row(
        CROSS_ACCOUNT,
        VENDOR_SESSION,
        "s3:GetObject",
        f"{BUCKET}/a",
        (read_bucket,),
        resource_policy=bucket_for_other,
        allowed=True,
    ),
    Row(
        EXTERNAL_ID,
        VENDOR_SESSION,
        "sts:AssumeRole",
        ROLE,
        (assume_any,),
        trust_with_external_id,
        context=(("sts:ExternalId", "Unique-ID-1234"),),
        allowed=True,
    ),
    Row(
        EXTERNAL_ID,
        VENDOR_SESSION,
        "sts:AssumeRole",
        ROLE,
        (assume_any,),
        trust_with_external_id,
        context=(("sts:ExternalId", "Guessed-ID"),),
    ),
    Row(EXTERNAL_ID, VENDOR_SESSION, "sts:AssumeRole", ROLE, (assume_any,), trust_with_external_id),
    Row(
        BOUNDARY,
        ALICE,
        "s3:GetObject",
        f"{BUCKET}/a",
        (s3_and_iam,),
        boundary=s3_boundary,
        allowed=True,
    ),
    Row(
        BOUNDARY,
        ALICE,
        "iam:CreateUser",
        f"arn:aws:iam::{ACCOUNT}:user/bob",
        (s3_and_iam,),
        boundary=s3_boundary,
    ),
    Row(WILDCARDS, ALICE, "ec2:TerminateInstances", INSTANCE, (ec2_in_account,), allowed=True),
    Row(
        WILDCARDS,
        ALICE,
        "ec2:TerminateInstances",
        f"arn:aws:ec2:{REGION}:{OTHER}:instance/i-0abcdef1234567890",
        (ec2_in_account,),
        account=OTHER,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.source.split(':')[0]}-{r.action}")
def test_documented_evaluation(engine: PolicyEngine, row: Row) -> None:
    decision = engine.decide(row.request())
    assert decision.allowed is row.allowed, (row.source, decision)


def message(engine: PolicyEngine, request: Request) -> str:
    decision = engine.decide(request)
    assert not decision.allowed
    return decision.message(request)


def test_denials_read_as_aws_writes_them(engine: PolicyEngine) -> None:
    """IAM User Guide, "Troubleshoot access denied error messages"."""
    obj = f"{BUCKET}/a"
    assert message(engine, Request(ALICE, "s3:GetObject", obj, ACCOUNT)) == (
        f"User: {ALICE} is not authorized to perform: s3:GetObject on resource: {obj} "
        "because no identity-based policy allows the s3:GetObject action"
    )
    managed = Policy(f"arn:aws:iam::{ACCOUNT}:policy/DenyS3", deny_s3.document)
    assert message(engine, Request(ALICE, "s3:GetObject", obj, ACCOUNT, (managed,))) == (
        f"User: {ALICE} is not authorized to perform: s3:GetObject on resource: {obj} "
        f"with an explicit deny in an identity-based policy: {managed.name}"
    )
    create = Request(
        ALICE,
        "iam:CreateUser",
        f"arn:aws:iam::{ACCOUNT}:user/bob",
        ACCOUNT,
        (s3_and_iam,),
        permission_boundary=s3_boundary,
    )
    assert message(engine, create).endswith(
        "because no permissions boundary allows the iam:CreateUser action"
    )
    vendor = Request(VENDOR_SESSION, "s3:GetObject", obj, ACCOUNT, (read_bucket,))
    assert message(engine, vendor).endswith(
        "because no resource-based policy allows the s3:GetObject action"
    )
    listing = Request(ALICE, "s3:ListAllMyBuckets", "*", ACCOUNT)
    assert message(engine, listing) == (
        f"User: {ALICE} is not authorized to perform: s3:ListAllMyBuckets because no "
        "identity-based policy allows the s3:ListAllMyBuckets action"
    )


def test_decisions_are_cached_until_a_policy_changes(engine: PolicyEngine) -> None:
    obj = f"{BUCKET}/cached"
    request = Request(ALICE, "s3:GetObject", obj, ACCOUNT, (read_bucket,))
    assert engine.decide(request).allowed
    trips = engine.stats.round_trips
    assert engine.decide(request).allowed
    assert engine.stats.round_trips == trips
    changed = Request(ALICE, "s3:GetObject", obj, ACCOUNT, (policy(allow("s3:PutObject")),))
    assert not engine.decide(changed).allowed
    assert engine.stats.round_trips == trips + 1


def test_a_batch_takes_one_round_trip(engine: PolicyEngine) -> None:
    requests = [
        Request(ALICE, action, f"{BUCKET}/batch", ACCOUNT, (read_bucket,))
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging")
    ]
    trips = engine.stats.round_trips
    assert [d.allowed for d in engine.decide_all(requests)] == [True, False, False, False]
    assert engine.stats.round_trips == trips + 1


def test_an_engine_that_dies_is_restarted(engine: PolicyEngine) -> None:
    engine.decide(Request(ALICE, "s3:GetObject", f"{BUCKET}/before", ACCOUNT, (read_bucket,)))
    process = engine._process
    assert process is not None
    process.kill()
    process.wait()
    starts = engine.stats.starts
    after = Request(ALICE, "s3:GetObject", f"{BUCKET}/after", ACCOUNT, (read_bucket,))
    assert engine.decide(after).allowed  # its policy crosses the pipe again
    assert engine.stats.starts == starts + 1


def test_a_request_the_engine_cannot_judge_is_an_error_not_a_decision(
    engine: PolicyEngine,
) -> None:
    with pytest.raises(EngineError, match=r"s3:FetchObject .*invalid\.action"):
        engine.decide(Request(ALICE, "s3:FetchObject", f"{BUCKET}/a", ACCOUNT, (everything,)))


def test_threads_share_the_engine_safely(engine: PolicyEngine) -> None:
    """The server asks from its request threads: answers never cross between them."""

    def ask(n: int) -> list[bool]:
        requests = [
            Request(ALICE, action, f"{BUCKET}/thread-{n}-{i}", ACCOUNT, (read_bucket,))
            for i, action in enumerate(["s3:GetObject", "s3:PutObject"] * 5)
        ]
        return [engine.decide(r).allowed for r in requests]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers == [[True, False] * 5] * 16


def test_a_numeric_sid_is_judged_not_refused(engine: PolicyEngine) -> None:
    """CloudFormation passes a template's `Sid: 1` on as text; the engine alone would refuse it."""
    numbered = policy({**allow("s3:GetObject", f"{BUCKET}/*"), "Sid": 1})
    assert engine.decide(
        Request(ALICE, "s3:GetObject", f"{BUCKET}/a", ACCOUNT, (numbered,))
    ).allowed
