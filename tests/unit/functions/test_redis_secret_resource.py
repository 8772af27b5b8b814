"""Custom::ValohaiRedisSecret through its Lambda handler, on moto's Secrets Manager."""

from __future__ import annotations

import string
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from valohai_cr import redis_secret

from tests.support.functions import OTHER_STACK_ID, STACK_ID, AwsCalls, Inbox, Invoker, Logs

RESOURCE = "Custom::ValohaiRedisSecret"
MISSING_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Gone-AbCdEf"


@pytest.fixture
def invoke(load_handler: Any, inbox: Inbox) -> Invoker:
    return Invoker(load_handler("redis_secret").handler, inbox, RESOURCE)


def secrets() -> Any:
    return boto3.client("secretsmanager")


def password(arn: str) -> str:
    value: str = secrets().get_secret_value(SecretId=arn)["SecretString"]
    return value


def tags(arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in secrets().describe_secret(SecretId=arn)["Tags"]}


def thrice(invoke: Invoker, event: dict[str, Any]) -> list[dict[str, Any]]:
    """The same event delivered three times (CloudFormation or Lambda retrying it)."""
    return [invoke.send(event).body for _ in range(3)]


def test_create_makes_a_tagged_32_character_password_and_returns_only_its_name_and_arn(
    invoke: Invoker, logs: Logs
) -> None:
    response = invoke("Create", {})

    arn = response["PhysicalResourceId"]
    assert response["Status"] == "SUCCESS"
    assert response["Data"] == {"Arn": arn, "Name": "ValohaiRedisSecret"}
    value = password(arn)
    assert len(value) == 32
    assert set(value) <= set(string.ascii_letters + string.digits)
    assert tags(arn) == {
        "valohai": "1",
        "valohai-hybrid:managed-by": "valohai-hybrid-aws",
        "valohai-hybrid:stack-id": STACK_ID,
    }
    assert value not in str(response)
    assert value not in logs.text


def test_retried_create_returns_the_same_secret_without_a_new_password(invoke: Invoker) -> None:
    responses = thrice(invoke, invoke.event("Create", {"SecretName": "Redis"}))

    assert {r["Status"] for r in responses} == {"SUCCESS"}
    assert len({r["PhysicalResourceId"] for r in responses}) == 1
    versions = secrets().describe_secret(SecretId="Redis")["VersionIdsToStages"]
    assert len(versions) == 1


def test_create_uses_the_given_kms_key(invoke: Invoker) -> None:
    key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]

    arn = invoke("Create", {"KmsKeyId": key})["PhysicalResourceId"]

    assert secrets().describe_secret(SecretId=arn)["KmsKeyId"] == key


def test_update_with_unchanged_properties_changes_nothing(
    invoke: Invoker, aws_calls: AwsCalls
) -> None:
    props = {"SecretName": "Redis", "RotationToken": "a"}
    arn = invoke("Create", props)["PhysicalResourceId"]
    before = password(arn)

    event = invoke.event("Update", props, physical_id=arn, old_properties=props)
    responses = [invoke.send(event, calls=aws_calls).body for _ in range(3)]

    assert {(r["Status"], r["PhysicalResourceId"]) for r in responses} == {("SUCCESS", arn)}
    assert password(arn) == before
    assert set(aws_calls.calls) == {"DescribeSecret"}


def test_a_new_rotation_token_rotates_the_password_once_even_when_retried(invoke: Invoker) -> None:
    old = {"RotationToken": "2024-01"}
    arn = invoke("Create", old)["PhysicalResourceId"]
    before = password(arn)

    event = invoke.event(
        "Update", {"RotationToken": "2025-06"}, physical_id=arn, old_properties=old
    )
    responses = thrice(invoke, event)

    assert {(r["Status"], r["PhysicalResourceId"]) for r in responses} == {("SUCCESS", arn)}
    after = password(arn)
    assert after != before
    assert len(after) == 32
    assert len(secrets().describe_secret(SecretId=arn)["VersionIdsToStages"]) == 2


def test_a_new_kms_key_is_applied_to_the_existing_secret(invoke: Invoker) -> None:
    arn = invoke("Create", {})["PhysicalResourceId"]
    before = password(arn)
    key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]

    response = invoke("Update", {"KmsKeyId": key}, physical_id=arn, old_properties={})

    assert response["PhysicalResourceId"] == arn
    assert secrets().describe_secret(SecretId=arn)["KmsKeyId"] == key
    assert password(arn) == before


def test_a_new_name_is_a_replacement_and_the_old_secret_goes_with_the_delete_that_follows(
    invoke: Invoker,
) -> None:
    old_arn = invoke("Create", {"SecretName": "Old"})["PhysicalResourceId"]

    update = invoke(
        "Update", {"SecretName": "New"}, physical_id=old_arn, old_properties={"SecretName": "Old"}
    )
    new_arn = update["PhysicalResourceId"]
    assert (update["Status"], update["Data"]["Name"]) == ("SUCCESS", "New")
    assert new_arn != old_arn
    assert "DeletedDate" not in secrets().describe_secret(SecretId=old_arn)

    delete = invoke.event("Delete", {"SecretName": "Old"}, physical_id=old_arn)
    assert {r["Status"] for r in thrice(invoke, delete)} == {"SUCCESS"}
    assert "DeletedDate" in secrets().describe_secret(SecretId=old_arn)
    assert "DeletedDate" not in secrets().describe_secret(SecretId=new_arn)


def test_delete_keeps_the_recovery_window(invoke: Invoker) -> None:
    arn = invoke("Create", {"RecoveryWindowInDays": "14"})["PhysicalResourceId"]

    responses = thrice(
        invoke, invoke.event("Delete", {"RecoveryWindowInDays": "14"}, physical_id=arn)
    )

    assert {r["Status"] for r in responses} == {"SUCCESS"}
    assert "DeletedDate" in secrets().describe_secret(SecretId=arn)
    secrets().restore_secret(SecretId=arn)  # still recoverable


def test_delete_with_a_zero_window_deletes_at_once_so_the_name_is_free(invoke: Invoker) -> None:
    arn = invoke("Create", {"RecoveryWindowInDays": "0"})["PhysicalResourceId"]

    invoke("Delete", {"RecoveryWindowInDays": "0"}, physical_id=arn)

    with pytest.raises(secrets().exceptions.ResourceNotFoundException):
        secrets().describe_secret(SecretId=arn)
    assert invoke("Create", {})["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    "physical_id",
    [MISSING_ARN, "valohai-setup_RedisSecret_ABCD1234"],
    ids=["secret-gone", "create-never-made-one"],
)
def test_delete_of_what_does_not_exist_succeeds(invoke: Invoker, physical_id: str) -> None:
    responses = thrice(invoke, invoke.event("Delete", {}, physical_id=physical_id))

    assert {(r["Status"], r["PhysicalResourceId"]) for r in responses} == {("SUCCESS", physical_id)}


def test_rollback_delete_after_a_failed_create_succeeds(invoke: Invoker) -> None:
    failed = invoke("Create", {"RecoveryWindowInDays": "3"})
    assert failed["Status"] == "FAILED"

    rollback = invoke(
        "Delete", {"RecoveryWindowInDays": "3"}, physical_id=failed["PhysicalResourceId"]
    )

    assert rollback["Status"] == "SUCCESS"


def test_delete_after_a_create_that_never_answered_removes_the_secret_it_made(
    invoke: Invoker,
) -> None:
    """A Create cut off by its Lambda deadline after making the secret answered FAILED with a
    generated id (the timer's answer): the rollback Delete still removes it, so that the name
    is free for the next launch."""
    arn = invoke("Create", {"RecoveryWindowInDays": "0"})["PhysicalResourceId"]

    rollback = invoke(
        "Delete", {"RecoveryWindowInDays": "0"}, physical_id="valohai-setup_RedisSecret_ABCD1234"
    )

    assert rollback["Status"] == "SUCCESS"
    with pytest.raises(secrets().exceptions.ResourceNotFoundException):
        secrets().describe_secret(SecretId=arn)


def test_delete_leaves_a_secret_of_another_stack_alone(invoke: Invoker) -> None:
    arn = invoke("Create", {}, stack_id=OTHER_STACK_ID)["PhysicalResourceId"]

    assert invoke("Delete", {}, physical_id=arn)["Status"] == "SUCCESS"

    assert "DeletedDate" not in secrets().describe_secret(SecretId=arn)


def test_a_secret_someone_else_made_is_refused_and_left_alone(invoke: Invoker) -> None:
    secrets().create_secret(Name="ValohaiRedisSecret", SecretString="theirs")

    responses = thrice(invoke, invoke.event("Create", {}))

    assert {r["Status"] for r in responses} == {"FAILED"}
    reason = responses[0]["Reason"]
    assert "not made by Valohai Hybrid" in reason
    assert "choose another SecretName" in reason
    assert password("ValohaiRedisSecret") == "theirs"


def test_a_secret_in_use_by_another_stack_is_refused_naming_that_stack(invoke: Invoker) -> None:
    invoke("Create", {}, stack_id=OTHER_STACK_ID)

    response = invoke("Create", {})

    assert response["Status"] == "FAILED"
    assert "belongs to stack other-setup" in response["Reason"]
    assert "choose another SecretName, or delete that stack" in response["Reason"]


def test_its_own_secret_left_scheduled_for_deletion_is_readopted_with_a_new_password(
    invoke: Invoker,
) -> None:
    earlier = invoke("Create", {}, stack_id=OTHER_STACK_ID)["PhysicalResourceId"]
    old_password = password(earlier)
    invoke("Delete", {}, physical_id=earlier, stack_id=OTHER_STACK_ID)

    responses = thrice(invoke, invoke.event("Create", {}))

    assert {(r["Status"], r["PhysicalResourceId"]) for r in responses} == {("SUCCESS", earlier)}
    assert "DeletedDate" not in secrets().describe_secret(SecretId=earlier)
    assert tags(earlier)["valohai-hybrid:stack-id"] == STACK_ID
    assert password(earlier) != old_password


def test_someone_elses_secret_scheduled_for_deletion_is_not_restored(invoke: Invoker) -> None:
    arn = secrets().create_secret(Name="ValohaiRedisSecret", SecretString="theirs")["ARN"]
    secrets().delete_secret(SecretId=arn)

    response = invoke("Create", {})

    assert response["Status"] == "FAILED"
    assert "scheduled for deletion" in response["Reason"]
    assert "DeletedDate" in secrets().describe_secret(SecretId=arn)


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServiceError"])
@pytest.mark.parametrize("flow", ["create", "readopt", "rotate", "delete"])
def test_every_failing_aws_call_answers_failed_with_the_operation_and_the_error(
    invoke: Invoker, aws_calls: AwsCalls, flow: str, code: str
) -> None:
    """Run the flow once to learn its AWS calls, then again with each of them failing."""
    names = iter(range(100))

    def prepare() -> dict[str, Any]:
        name = f"Secret{next(names)}"
        if flow == "create":
            return invoke.event("Create", {"SecretName": name})
        if flow == "readopt":
            earlier = invoke("Create", {"SecretName": name}, stack_id=OTHER_STACK_ID)
            invoke("Delete", {}, physical_id=earlier["PhysicalResourceId"], stack_id=OTHER_STACK_ID)
            return invoke.event("Create", {"SecretName": name})
        arn = invoke("Create", {"SecretName": name, "RotationToken": "a"})["PhysicalResourceId"]
        if flow == "rotate":
            props = {"SecretName": name, "RotationToken": "b"}
            old = {"SecretName": name, "RotationToken": "a"}
            return invoke.event("Update", props, physical_id=arn, old_properties=old)
        return invoke.event("Delete", {"SecretName": name}, physical_id=arn)

    invoke.send(prepare(), calls=aws_calls)
    operations = list(dict.fromkeys(aws_calls.calls))
    assert len(operations) >= 2
    for operation in operations:
        event = prepare()
        aws_calls.failing = {operation: code}
        response = invoke.send(event, calls=aws_calls).body
        aws_calls.failing = {}
        assert response["Status"] == "FAILED", operation
        assert f"{operation}: {code}" in response["Reason"], operation
        assert len(response["Reason"]) <= 256


properties = st.dictionaries(
    st.sampled_from([*redis_secret.PROPERTIES, "Colour"]),
    st.one_of(
        st.text(max_size=20),
        st.integers(),
        st.lists(st.text(max_size=3), max_size=2),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
        st.sampled_from(["0", "7", "31", "-1", "alias/", "bad name", "x" * 600]),
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(props=properties, request_type=st.sampled_from(["Create", "Update"]))
def test_any_properties_get_one_answer_and_a_failure_names_the_property(
    invoke: Invoker, props: dict[str, Any], request_type: str
) -> None:
    extra = {"physical_id": MISSING_ARN, "old_properties": {}} if request_type == "Update" else {}

    response = invoke(request_type, props, **extra)

    if response["Status"] == "FAILED":
        named = [*redis_secret.PROPERTIES, "Unknown property"]
        assert any(name in response["Reason"] for name in named), response["Reason"]
        assert len(response["Reason"]) <= 256
