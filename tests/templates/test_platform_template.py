"""The platform stack (template.yaml): what `make lint` checks, and what the template promises
to the product templates, to the functions and to Service Catalog's launch roles.

Structural checks read the template as CloudFormation deploys it: SAM-translated offline by the
local AWS's transform, and with conditions evaluated by the local AWS's intrinsic functions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from localaws.cloudformation.handler_calls import CALLED_ONLY, PASSED_ROLE_PROPERTIES
from localaws.cloudformation.intrinsics import NO_VALUE, Evaluator, Scope
from valohai_cr.forwarder import FORWARDED_STATUSES

from tests.support.cfn import BIN, REPO, failed_rule_assertions, parameter_error
from valohai_hybrid.checkout import CFN
from valohai_hybrid.launch_permissions import (
    CALLED_WITHOUT_RESOURCE,
    UNUSED,
    handler_actions,
    has_resource_level_permissions,
    nests_templates,
    product_templates,
    readable_parameters,
    required_actions,
    unused_actions,
)
from valohai_hybrid.local.sam_translation import translated

TEMPLATE = REPO / "template.yaml"
SAM = REPO / ".tools" / "sam" / "bin" / "sam"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
MINIMUM_REASON_WORDS = 8
TOOL_ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "SAM_CLI_TELEMETRY": "0",
}
#: functions/README.md: logical id -> (function name, needs REDELIVERY_QUEUE_URL, invoked
#: asynchronously).
FUNCTIONS = {
    "RedisSecretFunction": ("valohai-hybrid-redis-secret", False, True),
    "QueueAddressFunction": ("valohai-hybrid-queue-address", True, True),
    "NotificationFunction": ("valohai-hybrid-notification", True, True),
    "StackStatusFunction": ("valohai-hybrid-stack-status", True, True),
    "RedeliveryFunction": ("valohai-hybrid-redelivery", False, False),
}
#: docs: interfaces between the parts.
SERVICE_TOKENS = {
    "/valohai-hybrid/service-token/redis-secret": "RedisSecretFunction",
    "/valohai-hybrid/service-token/queue-address": "QueueAddressFunction",
    "/valohai-hybrid/service-token/notification": "NotificationFunction",
}
LAUNCH_ROLES = {"IamLaunchRole": "iam.yml", "WorkersLaunchRole": "main.yml"}
SERVICE_CATALOG_TYPES = ("AWS::ServiceCatalog::",)


def _load() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


SOURCE = _load()


TRANSLATED = translated(TEMPLATE, region=REGION, account_id=ACCOUNT)


def resources(resource_type: str, template: dict[str, Any] = TRANSLATED) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


class Deployment:
    """The template's conditions and values for one set of parameter values."""

    def __init__(self, **given: str) -> None:
        parameters = {k: str(p.get("Default", "")) for k, p in SOURCE["Parameters"].items()}
        parameters.update({"ArtifactsBucket": "artifacts", "Releases": "1.0.0", **given})
        self.conditions: dict[str, bool] = {}
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self.evaluator = Evaluator(
            Scope(
                parameters=parameters,
                pseudo=pseudo,
                mappings=SOURCE["Mappings"],
                conditions=self.conditions,
                resource_names=SOURCE["Resources"],
                ref_resource=lambda name: f"<{name}>",
            )
        )
        for name, condition in SOURCE["Conditions"].items():
            self.conditions[name] = self.evaluator.condition(condition)

    def active(self) -> set[str]:
        return {
            name
            for name, resource in SOURCE["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def properties(self, logical_id: str) -> Any:
        return self.evaluator.evaluate(SOURCE["Resources"][logical_id]["Properties"])


# ---- make lint -------------------------------------------------------------------------------


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=TOOL_ENV, check=False
    )


def test_sam_validate_lint_is_clean() -> None:
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make tools` to create the aws-sam-cli environment")
    result = _run([str(SAM), "validate", "--lint", "--template-file", str(TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_finds_nothing_in_any_region() -> None:
    # E3006 (type unknown in a region): Service Catalog is not in every region, and the platform
    # installs only where it is; sam validate --lint checks the types exist.
    result = _run(
        [
            str(BIN / "cfn-lint"),
            *("--format", "json", "--include-checks", "I"),
            *("--regions", "ALL_REGIONS", "--ignore-checks", "E3006"),
            "--",
            str(TEMPLATE),
        ]
    )
    assert result.returncode & 1 == 0, result.stderr
    assert json.loads(result.stdout) == []


def cfn_lint_suppressions() -> list[tuple[int, str]]:
    """(line, reason) of every ignore_checks: the YAML comment right above it."""
    lines = TEMPLATE.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        if line.strip() == "ignore_checks:":
            reason: list[str] = []
            for above in reversed(lines[:number]):
                if not above.strip().startswith("#"):
                    break
                reason.insert(0, above.strip().lstrip("# "))
            found.append((number + 1, " ".join(reason)))
    return found


@pytest.mark.parametrize(("line", "reason"), cfn_lint_suppressions())
def test_every_cfn_lint_suppression_gives_its_reason(line: int, reason: str) -> None:
    assert len(reason.split()) >= MINIMUM_REASON_WORDS, f"template.yaml:{line} has no reason"


@pytest.mark.parametrize("which", ["source", "translated"])
def test_checkov_reports_no_failures(
    platform_checkov: dict[str, dict[str, Any]], which: str
) -> None:
    """checkov on the source, and on the translated template (where SAM's roles and event
    resources exist), as `make lint` runs it (one checkov run: tests/templates/conftest.py)."""
    results = platform_checkov[which]
    assert [f"{c['check_id']} {c['resource']}" for c in results["failed_checks"]] == []
    assert results["parsing_errors"] == []
    assert len(results["passed_checks"]) > 80


def checkov_skips() -> list[tuple[str, str, str]]:
    return [
        (name, skip["id"], skip.get("comment", ""))
        for name, resource in SOURCE["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_suppression_is_used(platform_checkov: dict[str, dict[str, Any]]) -> None:
    skipped = {
        (c["resource"].split(".")[-1], c["check_id"])
        for c in platform_checkov["translated"]["skipped_checks"]
    }
    assert {(name, check) for name, check, _ in checkov_skips()} == skipped


@pytest.mark.parametrize(
    ("resource", "check", "comment"),
    checkov_skips(),
    ids=[f"{resource}-{check}" for resource, check, _ in checkov_skips()],
)
def test_every_checkov_suppression_gives_its_reason(
    resource: str, check: str, comment: str
) -> None:
    assert re.fullmatch(r"CKV2?_AWS_\d+", check)
    assert len(comment.split()) >= MINIMUM_REASON_WORDS, f"{resource}: {comment!r}"


# ---- parameters ------------------------------------------------------------------------------


def test_every_parameter_is_grouped_labelled_and_explained() -> None:
    interface = SOURCE["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(SOURCE["Parameters"])
    assert set(interface["ParameterLabels"]) == set(SOURCE["Parameters"])
    for name, parameter in SOURCE["Parameters"].items():
        assert len(parameter["Description"].split()) >= 5, name
        constrained = {"AllowedPattern", "AllowedValues", "MinValue"} & set(parameter)
        assert not constrained or parameter.get("ConstraintDescription"), name


# parameter: (values CloudFormation must accept, values it must reject)
SAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "Releases": (
        ["1.0.0", "1.2.0,1.1.0", "2.0.0-rc.1,1.9.3", "5.0.0,4.0.0,3.0.0,2.0.0,1.0.0"],
        [
            "",
            "1.0",
            "v1.0.0",
            "1.0.0, 0.9.0",
            "1.0.0+build.1",
            "6.0.0,5.0.0,4.0.0,3.0.0,2.0.0,1.0.0",
        ],
    ),
    "ArtifactsBucket": (["valohai-hybrid-artifacts-123456789012-eu-west-1"], ["", "Upper", "a"]),
    "PrincipalArns": (
        [
            "",
            "arn:aws:iam::123456789012:role/Admin",
            "arn:aws:iam:::role/Platform*,arn:aws-cn:iam::123456789012:group/ops",
        ],
        [
            "arn:aws:iam::123:role/Admin",
            "arn:aws:iam::123456789012:role/A b",
            "arn:aws:iam::123456789012:role/A,",
            "arn:aws:sts::123456789012:assumed-role/A/b",
            ",".join(["arn:aws:iam::123456789012:user/u"] * 6),
        ],
    ),
    "ShareWithAccounts": (
        ["", "111111111111", "111111111111,222222222222"],
        ["1111", "111111111111 ", "111111111111,", ",".join(["111111111111"] * 6)],
    ),
    "PortfolioName": (["Valohai Hybrid", "ml-platform_2"], ["", " leading", "a" * 101]),
    "ReservedConcurrency": (["0", "5", "100"], ["-1", "101", "many"]),
    "RedeliveryIntervalSeconds": (["30", "720"], ["10", "600"]),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parameter_constraints(name: str) -> None:
    accepted, rejected = SAMPLES[name]
    definition = SOURCE["Parameters"][name]
    assert [v for v in accepted if parameter_error(definition, v)] == []
    assert [v for v in rejected if not parameter_error(definition, v)] == []


def test_a_launch_tag_needs_its_value() -> None:
    assert failed_rule_assertions(SOURCE, {"LaunchTagKey": "CostCenter"}) == [
        "Give LaunchTagValue with LaunchTagKey, or leave both empty."
    ]
    assert (
        failed_rule_assertions(SOURCE, {"LaunchTagKey": "CostCenter", "LaunchTagValue": "42"}) == []
    )


# ---- functions ---------------------------------------------------------------------------------


def _function(logical_id: str) -> dict[str, Any]:
    function: dict[str, Any] = TRANSLATED["Resources"][logical_id]
    return function


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_has_its_role_log_group_and_limits(logical_id: str) -> None:
    name, notifies, asynchronous = FUNCTIONS[logical_id]
    function = _function(logical_id)
    properties = function["Properties"]
    assert properties["FunctionName"] == name
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert "VpcConfig" not in properties
    assert SOURCE["Resources"][logical_id]["Metadata"]["BuildMethod"] == "makefile"
    assert properties["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert ("REDELIVERY_QUEUE_URL" in properties["Environment"]["Variables"]) is notifies

    # Its own log group, named as Lambda names it, made first and kept after it.
    group_id = function["DependsOn"]
    group = TRANSLATED["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{name}"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"

    # Its own role, which writes to that log group only.
    role_id = properties["Role"]["Fn::GetAtt"][0]
    statements = _role_statements(role_id)
    logs = [s for s in statements if any(a.startswith("logs:") for a in _actions(s))]
    assert logs == [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::Sub": f"${{{group_id}.Arn}}"},
        }
    ]

    # Failed asynchronous invocations are kept, in a queue the role may write to.
    if asynchronous:
        assert properties["DeadLetterConfig"] == {
            "TargetArn": {"Fn::GetAtt": ["FailedInvocationQueue", "Arn"]}
        }
        assert {"Effect": "Allow", "Action": "sqs:SendMessage"}.items() <= next(
            s for s in statements if s.get("Sid") == "FailedInvocations"
        ).items()
        (config,) = [
            r
            for r in resources("AWS::Lambda::EventInvokeConfig").values()
            if r["Properties"]["FunctionName"] == {"Ref": logical_id}
        ]
        # CloudFormation sends a custom-resource request once: a retry would run a Create
        # again after its stack rolled back. The stack-status forwarder may be retried.
        retries = 0 if logical_id in SERVICE_TOKENS.values() else 2
        assert config["Properties"]["MaximumRetryAttempts"] == retries

    # A custom resource reads, before it acts, whether its request is CloudFormation's: only
    # that, and only on the stacks Service Catalog launches.
    confirm = [s for s in statements if s.get("Sid") == "ConfirmRequestsWithCloudFormation"]
    if logical_id in SERVICE_TOKENS.values():
        assert confirm == [
            {
                "Sid": "ConfirmRequestsWithCloudFormation",
                "Effect": "Allow",
                "Action": ["cloudformation:DescribeStackResource", "cloudformation:DescribeStacks"],
                "Resource": {
                    "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:"
                    "${AWS::AccountId}:stack/SC-${AWS::AccountId}-pp-*/*"
                },
            }
        ]
    else:
        assert confirm == []


def test_every_function_has_a_role_of_its_own() -> None:
    roles = [_function(f)["Properties"]["Role"]["Fn::GetAtt"][0] for f in FUNCTIONS]
    assert len(set(roles)) == len(FUNCTIONS)
    assert set(roles) <= set(resources("AWS::IAM::Role"))


def test_service_tokens_are_the_unqualified_arns_of_fixed_functions() -> None:
    published = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in resources("AWS::SSM::Parameter").values()
    }
    assert published == {
        name: {"Fn::GetAtt": [function, "Arn"]} for name, function in SERVICE_TOKENS.items()
    }
    for function in SERVICE_TOKENS.values():
        # A literal name: no code or configuration change can replace the function.
        assert isinstance(_function(function)["Properties"]["FunctionName"], str)
        assert "AutoPublishAlias" not in SOURCE["Resources"][function]["Properties"]


def test_redelivery_waits_six_times_the_consumer_timeout_and_ends_in_a_dead_letter_queue() -> None:
    queue = TRANSLATED["Resources"]["RedeliveryQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == {"Ref": "RedeliveryIntervalSeconds"}
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["RedeliveryDeadLetterQueue", "Arn"]
    }
    assert _function("RedeliveryFunction")["Properties"]["Timeout"] == {
        "Fn::FindInMap": ["Redelivery", {"Ref": "RedeliveryIntervalSeconds"}, "ConsumerTimeout"]
    }
    for interval in SOURCE["Parameters"]["RedeliveryIntervalSeconds"]["AllowedValues"]:
        settings = SOURCE["Mappings"]["Redelivery"][interval]
        assert int(interval) >= 6 * settings["ConsumerTimeout"]
        assert 1 <= settings["MaxReceiveCount"] <= 1000
    (mapping,) = resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["RedeliveryQueue", "Arn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_redelivery_queues_are_fifo_so_a_setups_events_keep_their_order() -> None:
    """The queue and its DLQ are FIFO (a FIFO queue needs a FIFO DLQ), and the event source
    keeps to what Lambda allows on FIFO queues: at most 10 a batch, no batching window."""
    for logical_id in ("RedeliveryQueue", "RedeliveryDeadLetterQueue"):
        queue = TRANSLATED["Resources"][logical_id]["Properties"]
        assert queue["FifoQueue"] is True
        assert queue["QueueName"].endswith(".fifo")
        assert "ContentBasedDeduplication" not in queue  # each message names its own id
    (mapping,) = resources("AWS::Lambda::EventSourceMapping").values()
    assert 1 <= mapping["Properties"]["BatchSize"] <= 10
    assert "MaximumBatchingWindowInSeconds" not in mapping["Properties"]


def test_every_queue_is_encrypted_and_tls_only() -> None:
    queues = resources("AWS::SQS::Queue")
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    (policy,) = resources("AWS::SQS::QueuePolicy").values()
    assert sorted(q["Ref"] for q in policy["Properties"]["Queues"]) == sorted(queues)
    statement, *_ = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_notifying_functions_may_queue_redeliveries() -> None:
    """Whoever else can write to the redelivery queue (an identity policy granting sqs:*) is
    denied by the queue; the consumer also drops what the platform key did not seal."""
    (policy,) = resources("AWS::SQS::QueuePolicy").values()
    [statement] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "OnlyThePlatformQueuesRedeliveries"
    ]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "sqs:SendMessage",
    )
    assert statement["Resource"] == {"Fn::GetAtt": ["RedeliveryQueue", "Arn"]}
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    roles = {"QueueAddressRole", "NotificationRole", "StackStatusRole"}
    assert sorted(a["Fn::GetAtt"][0] for a in allowed) == sorted(roles)
    for logical_id, resource in resources("AWS::IAM::Role").items():
        statements = resource["Properties"].get("Policies", [{}])[0].get("PolicyDocument", {})
        sends = [
            st
            for st in statements.get("Statement", [])
            if st.get("Action") == "sqs:SendMessage"
            and st.get("Resource") == {"Fn::GetAtt": ["RedeliveryQueue", "Arn"]}
        ]
        assert bool(sends) == (logical_id in roles), logical_id


def test_the_redelivery_key_is_the_platforms_own_and_only_its_functions_read_it() -> None:
    key = TRANSLATED["Resources"]["RedeliveryKey"]
    assert key["Type"] == "AWS::SecretsManager::Secret"
    assert key["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    readers = {
        logical_id
        for logical_id, resource in resources("AWS::IAM::Role").items()
        for policy in resource["Properties"].get("Policies", [])
        for st in policy["PolicyDocument"]["Statement"]
        if st.get("Resource") == {"Ref": "RedeliveryKey"}
    }
    assert readers == {"QueueAddressRole", "NotificationRole", "StackStatusRole", "RedeliveryRole"}
    for function in (
        "QueueAddressFunction",
        "NotificationFunction",
        "StackStatusFunction",
        "RedeliveryFunction",
    ):
        variables = _function(function)["Properties"]["Environment"]["Variables"]
        assert variables["REDELIVERY_KEY_SECRET_ARN"] == {"Ref": "RedeliveryKey"}, function


def test_the_functions_say_which_release_they_are_and_refuse_loopback_by_default() -> None:
    for function in FUNCTIONS:
        variables = _function(function)["Properties"]["Environment"]["Variables"]
        assert variables["VALOHAI_HYBRID_RELEASE"] == {
            "Fn::Select": [0, {"Fn::Split": [",", {"Ref": "Releases"}]}]
        }, function
        assert variables["ALLOW_LOOPBACK_VALOHAI_API"] == {"Ref": "AllowLoopbackValohaiApi"}
    assert SOURCE["Parameters"]["AllowLoopbackValohaiApi"]["Default"] == "false"


def test_only_launched_products_failures_and_deletions_reach_the_forwarder() -> None:
    (rule,) = resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudformation"]
    assert pattern["detail-type"] == ["CloudFormation Stack Status Change"]
    assert set(pattern["detail"]["status-details"]["status"]) == FORWARDED_STATUSES
    (prefix,) = pattern["detail"]["stack-id"]
    assert prefix["prefix"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:"
        "stack/SC-${AWS::AccountId}-pp-"
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["StackStatusFunction", "Arn"]}


# ---- Service Catalog ---------------------------------------------------------------------------


def test_each_release_is_a_version_of_both_products_the_current_one_first() -> None:
    deployment = Deployment(Releases="1.2.0,1.1.0,1.0.0", ArtifactsBucket="releases-bucket")
    for product, stem in (("IamProduct", "iam"), ("WorkersProduct", "main")):
        versions = deployment.properties(product)["ProvisioningArtifactParameters"]
        assert [(v["Name"], v["Info"]["LoadTemplateFromURL"]) for v in versions] == [
            (
                release,
                f"https://releases-bucket.s3.{REGION}.amazonaws.com/releases/{release}/{stem}.json",
            )
            for release in ("1.2.0", "1.1.0", "1.0.0")
        ]
        assert "ReplaceProvisioningArtifacts" not in SOURCE["Resources"][product]["Properties"]


def test_principals_are_associated_by_arn_or_by_name_pattern() -> None:
    deployment = Deployment(
        PrincipalArns="arn:aws:iam::123456789012:role/Admin,arn:aws:iam:::role/Platform*"
    )
    associations = [
        deployment.properties(name)
        for name in sorted(deployment.active())
        if name.startswith("PrincipalAssociation")
    ]
    assert [(a["PrincipalARN"], a["PrincipalType"]) for a in associations] == [
        ("arn:aws:iam::123456789012:role/Admin", "IAM"),
        ("arn:aws:iam:::role/Platform*", "IAM_PATTERN"),
    ]


def test_the_portfolio_is_shared_with_the_accounts_given() -> None:
    deployment = Deployment(ShareWithAccounts="111111111111,222222222222")
    shares = [
        deployment.properties(n) for n in sorted(deployment.active()) if n.startswith("Share")
    ]
    assert [s["AccountId"] for s in shares] == ["111111111111", "222222222222"]
    assert all(s["ShareTagOptions"] for s in shares)
    assert not any(n.startswith(("Share", "PrincipalAssociation")) for n in Deployment().active())


def test_an_account_receiving_a_share_gets_what_launches_need_and_no_portfolio() -> None:
    receiving = Deployment(PublishPortfolio="false", PrincipalArns="arn:aws:iam::1:role/x")
    catalog = {
        n for n, r in SOURCE["Resources"].items() if r["Type"].startswith(SERVICE_CATALOG_TYPES)
    }
    assert catalog
    assert not catalog & receiving.active()
    assert {*FUNCTIONS, *LAUNCH_ROLES, "RedeliveryQueue"} <= receiving.active()
    everything = Deployment(
        LaunchTagKey="CostCenter",
        LaunchTagValue="42",
        PrincipalArns=",".join(f"arn:aws:iam::123456789012:role/R{n}" for n in range(5)),
        ShareWithAccounts=",".join(f"{n}" * 12 for n in range(1, 6)),
    )
    assert {*FUNCTIONS, *LAUNCH_ROLES, *catalog} <= everything.active()


def test_launch_constraints_name_the_launch_roles_after_their_products_join_the_portfolio() -> None:
    for constraint, association, role in (
        ("IamLaunchConstraint", "IamProductAssociation", "IamLaunchRole"),
        ("WorkersLaunchConstraint", "WorkersProductAssociation", "WorkersLaunchRole"),
    ):
        resource = SOURCE["Resources"][constraint]
        assert resource["DependsOn"] == association
        assert resource["Properties"]["LocalRoleName"] == {"Ref": role}
        trust = SOURCE["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "servicecatalog.amazonaws.com"}


# ---- launch roles: enough, and no more -----------------------------------------------------------


def _role_statements(role_id: str, template: dict[str, Any] = TRANSLATED) -> list[dict[str, Any]]:
    role = template["Resources"][role_id]["Properties"]
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


@pytest.mark.parametrize(("role", "root"), sorted(LAUNCH_ROLES.items()))
def test_a_launch_role_grants_what_its_product_needs_and_nothing_else(role: str, root: str) -> None:
    statements = _role_statements(role, SOURCE)
    assert {s["Effect"] for s in statements} == {"Allow"}
    granted = set().union(*(_actions(s) for s in statements))
    needed = required_actions(CFN, root)
    assert sorted(set(needed) - granted) == [], "needed by the product, not granted"
    assert sorted(granted - set(needed)) == [], "granted, needed by nothing in the product"


@pytest.mark.parametrize("role", sorted(LAUNCH_ROLES))
def test_a_launch_role_scopes_every_action_iam_can_scope(role: str) -> None:
    for statement in _role_statements(role, SOURCE):
        scopable = {a for a in _actions(statement) if has_resource_level_permissions(a)}
        if statement["Resource"] == "*":
            assert scopable <= set(CALLED_WITHOUT_RESOURCE), statement["Sid"]
        else:
            assert scopable == _actions(statement), statement["Sid"]


def _product_types() -> Iterator[str]:
    for path in CFN.glob("*.yml"):
        template, _ = decode(str(path))
        assert template is not None
        for resource in template["Resources"].values():
            yield str(resource["Type"])


def test_every_unused_permission_is_a_real_one_of_a_type_the_products_use() -> None:
    assert set(UNUSED) <= set(_product_types())
    for resource_type in UNUSED:
        assert unused_actions(resource_type) <= handler_actions(resource_type), resource_type


def _product_resources() -> dict[str, list[dict[str, Any]]]:
    """Every resource of both products (nested templates included), by type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for root in LAUNCH_ROLES.values():
        for name in product_templates(CFN, root):
            template, _ = decode(str(CFN / name))
            assert template is not None
            for resource in template["Resources"].values():
                found.setdefault(str(resource["Type"]), []).append(resource)
    return found


def test_left_out_permissions_are_those_the_local_aws_says_handlers_do_not_call() -> None:
    """Two homes of one fact, kept apart by the layers (the product may not import the local
    AWS): `UNUSED` leaves a declared permission out of a launch role exactly when
    `handler_calls` says the handler calls it for none of the products' resources of that
    type. What `UNUSED` leaves out for another reason is checked against that reason: a role
    passed by none of the resources, or a delete of a retained resource."""
    for resource_type, resources in _product_resources().items():
        conditional = {
            action: condition
            for action, condition in CALLED_ONLY.get(resource_type, {}).items()
            if action in handler_actions(resource_type)
        }
        not_called = {
            action
            for action, condition in conditional.items()
            if not any(condition.holds(r.get("Properties") or {}) for r in resources)
        }
        left_out = unused_actions(resource_type)
        assert left_out & set(conditional) == not_called, resource_type
        for action in left_out - set(conditional):
            if action == "iam:PassRole":
                assert not any(
                    set(PASSED_ROLE_PROPERTIES) & set(r.get("Properties") or {}) for r in resources
                ), resource_type
            else:
                schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
                handlers = schema.schema["handlers"]
                assert action in handlers["delete"]["permissions"], (resource_type, action)
                assert action not in handlers["create"]["permissions"], (resource_type, action)
                assert {r.get("DeletionPolicy") for r in resources} == {"Retain"}, resource_type


def test_the_launch_roles_cannot_delete_customer_data() -> None:
    """No object or secret deletes. DeleteBucket only on the data buckets: CloudFormation needs
    it to remove the (empty) bucket of a failed first launch, and S3 refuses it for a bucket
    holding objects."""
    for role in LAUNCH_ROLES:
        statements = _role_statements(role, SOURCE)
        granted = set().union(*(_actions(s) for s in statements))
        assert not {"s3:DeleteObject", "secretsmanager:DeleteSecret"} & granted, role
        for statement in statements:
            if "s3:DeleteBucket" in _actions(statement):
                assert (role, statement["Sid"]) == ("WorkersLaunchRole", "DataBucket")
                assert statement["Resource"] == {
                    "Fn::Sub": "arn:${AWS::Partition}:s3:::valohai-data-*"
                }
                assert "Condition" not in statement


def test_a_failed_first_launch_can_remove_the_data_bucket_it_created() -> None:
    """The data bucket is RetainExceptOnCreate, so a create rollback deletes it: the Workers
    launch role must have every permission the bucket's delete handler declares."""
    template, _ = decode(str(CFN / "s3bucket.yml"))
    assert template is not None
    bucket = template["Resources"]["DataBucket"]
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    granted = {
        action
        for statement in _role_statements("WorkersLaunchRole", SOURCE)
        if statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::valohai-data-*"}
        for action in _actions(statement)
    }
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::S3::Bucket").schema
    assert set(schema["handlers"]["delete"]["permissions"]) <= granted


@pytest.mark.parametrize(("role", "root"), sorted(LAUNCH_ROLES.items()))
def test_a_launch_role_reads_service_catalogs_template_copy_and_the_released_templates(
    role: str, root: str
) -> None:
    """Service Catalog launches from a copy in a bucket it owns, tagged
    servicecatalog:provisioning=true (AWS's launch-constraint guide); nested templates come from
    the release location, for a product that nests any. Reads only, and the copy grant only
    for objects with that tag."""
    reads = {s["Sid"]: s for s in _role_statements(role, SOURCE) if "s3:GetObject" in _actions(s)}
    nested = {"ReleasedTemplates"} if nests_templates(CFN, root) else set()
    assert set(reads) == {"ServiceCatalogTemplateCopies", *nested}
    copies = reads["ServiceCatalogTemplateCopies"]
    assert _actions(copies) == {"s3:GetObject"}
    assert copies["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::*/*"}
    assert copies["Condition"] == {
        "StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    }
    if not nested:
        return
    released = reads["ReleasedTemplates"]
    assert _actions(released) == {"s3:GetObject"}
    assert released["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactsBucket}/releases/*"
    }
    assert "Condition" not in released


@pytest.mark.parametrize(("role", "root"), sorted(LAUNCH_ROLES.items()))
def test_a_launch_role_reads_only_the_parameters_its_product_resolves(role: str, root: str) -> None:
    """Not parameter/*: an end user could name any parameter and read its value."""
    arn = re.compile(
        r"arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:(?P<owner>\$\{AWS::AccountId\})?"
        r":parameter(?P<name>/.+)"
    )
    readable = set()
    for statement in _role_statements(role, SOURCE):
        if "ssm:GetParameters" not in _actions(statement):
            continue
        assert _actions(statement) == {"ssm:GetParameters"}, statement["Sid"]
        for resource in statement["Resource"]:
            found = arn.fullmatch(resource["Fn::Sub"])
            assert found, resource
            # AWS's public parameters belong to no account; everything else to this one.
            assert (found["owner"] is None) == found["name"].startswith("/aws/service/"), resource
            readable.add(found["name"])
    assert readable == readable_parameters(CFN, root)
    assert readable == EXPECTED_READABLE[role]


EXPECTED_READABLE = {
    "IamLaunchRole": set(),
    "WorkersLaunchRole": {
        "/valohai-hybrid/service-token/redis-secret",
        "/valohai-hybrid/service-token/queue-address",
        "/valohai-hybrid/service-token/notification",
        "/valohai-hybrid/queue-image/*",
        "/aws/service/*",
    },
}
