"""Publishing as a maintainer meets it: what it deploys, and the mistakes it explains.

Mistakes end with `error: <what to do>` and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.platform import REGION, RELEASE, publish_release, release_copy
from valohai_hybrid import cli
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.launch_permissions import (
    CALLED_WITHOUT_RESOURCE,
    has_resource_level_permissions,
    required_actions,
)
from valohai_hybrid.products import PRODUCTS, WORKERS
from valohai_hybrid.publish import Published


def _statements(iam: Any, role_arn: str) -> list[dict[str, Any]]:
    role = role_arn.rsplit("/", 1)[1]
    statements: list[dict[str, Any]] = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        statements += iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"][
            "Statement"
        ]
    return statements


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


@pytest.mark.parametrize(
    ("root", "output"), [(p.root_template, p.launch_role_output) for p in PRODUCTS]
)
def test_deployed_launch_roles_grant_what_their_product_needs_and_nothing_else(
    local_aws: LocalAwsHandle, platform: Published, root: str, output: str
) -> None:
    statements = _statements(local_aws.client("iam"), platform.outputs[output])
    granted = set().union(*(_actions(s) for s in statements if s["Effect"] == "Allow"))
    needed = required_actions(ROOT / "cfn", root)

    assert sorted(set(needed) - granted) == [], "needed but not granted"
    assert sorted(granted - set(needed)) == [], "granted but not needed"
    unscoped = set().union(*(_actions(s) for s in statements if s["Resource"] == "*"))
    scopable = {a for a in unscoped if has_resource_level_permissions(a)}
    assert scopable <= set(CALLED_WITHOUT_RESOURCE), "granted on * though IAM can scope them"


def test_the_artifacts_bucket_is_private_encrypted_versioned_and_tls_only(
    local_aws: LocalAwsHandle, platform: Published
) -> None:
    s3 = local_aws.client("s3", REGION)
    blocked = s3.get_public_access_block(Bucket=platform.bucket)["PublicAccessBlockConfiguration"]
    assert blocked == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    (rule,) = s3.get_bucket_encryption(Bucket=platform.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=platform.bucket)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=platform.bucket)["Policy"])
    assert {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= policy["Statement"][0].items()


def test_package_uploads_a_release_and_names_its_templates(
    local_aws: LocalAwsHandle,
    platform: Published,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    code = cli.main(["package", "--project-dir", str(ROOT), "--region", REGION])

    printed = capsys.readouterr().out
    assert code == 0
    prefix = f"https://{platform.bucket}.s3.{REGION}.amazonaws.com/releases/{RELEASE}/"
    assert f"{prefix}iam.json" in printed
    assert f"{prefix}main.json" in printed


def _error(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    code = cli.main(["publish", "--project-dir", str(ROOT), "--region", REGION, *arguments])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert captured.err.startswith("error: ")
    return captured.err


@pytest.mark.parametrize(
    ("arguments", "explanation"),
    [
        (["--version", "1.2"], "is not a semantic version such as 1.2.0"),
        (["--version", "1.2.3+build.7"], "no build metadata"),
        (["--version", "9.9.9"], f"declares version {RELEASE}"),
        (["--config-env", "qa"], "has no environment 'qa': use one of default, production"),
        (["--sam", "/nowhere/sam"], "aws-sam-cli not found at /nowhere/sam: run `make tools`"),
        (["--principal", "arn:aws:iam::123:role/Admin"], "is not a valid principal ARN"),
        (["--share-with", "12345"], "'12345' is not a valid account id"),
        (
            ["--parameter", "PublishPortfolio=false"],
            "give that account's artifacts bucket with --parameter ArtifactsBucket=<bucket>",
        ),
    ],
)
def test_mistakes_are_explained(
    local_aws: LocalAwsHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    explanation: str,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    assert explanation in _error(capsys, *arguments)


def test_missing_credentials_are_explained(
    local_aws: LocalAwsHandle, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert "no AWS credentials: sign in" in _error(capsys)


def test_a_published_release_cannot_change(
    local_aws: LocalAwsHandle,
    platform: Published,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    changed = release_copy(RELEASE, tmp_path / "cfn")
    iam = changed / "iam.yml"
    iam.write_text(iam.read_text().replace("MaxSessionDuration: 3600", "MaxSessionDuration: 7200"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)

    explanation = _error(capsys, "--cfn-dir", str(changed))

    assert f"release {RELEASE} is already published with different templates" in explanation
    assert "bump the version" in explanation


def test_an_account_receiving_the_portfolio_gets_what_launches_need_and_no_portfolio(
    local_aws: LocalAwsHandle, platform: Published
) -> None:
    region = "eu-west-3"  # stands in for the receiving account: the names are per region
    receiving = publish_release(
        local_aws,
        region=region,
        parameters={"PublishPortfolio": "false", "ArtifactsBucket": platform.bucket},
    )
    try:
        assert receiving.release is None
        assert "PortfolioId" not in receiving.outputs
        assert (
            local_aws.client("servicecatalog", region).list_portfolios()["PortfolioDetails"] == []
        )
        ssm = local_aws.client("ssm", region)
        token = ssm.get_parameter(Name="/valohai-hybrid/service-token/notification")
        assert token["Parameter"]["Value"] == receiving.outputs["NotificationFunctionArn"]
        (templates,) = [
            s
            for s in _statements(
                local_aws.client("iam"), receiving.outputs[WORKERS.launch_role_output]
            )
            if s.get("Sid") == "ReleasedTemplates"
        ]
        assert templates["Resource"] == f"arn:aws:s3:::{platform.bucket}/releases/*"
    finally:
        cloudformation = local_aws.client("cloudformation", region)
        (stack,) = cloudformation.describe_stacks(StackName=receiving.stack_name)["Stacks"]
        cloudformation.delete_stack(StackName=stack["StackId"])
        local_aws.wait_for_stack(stack["StackId"], region=region)
