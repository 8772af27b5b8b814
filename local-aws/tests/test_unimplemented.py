"""Operations the local AWS does not implement answer AWS's 4xx error for an operation it does
not know, in the service's own protocol, so SDKs neither retry nor fail to parse them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle

QUERY = (400, "InvalidAction")  # AWS's Common Errors, for an action a query API lacks
JSON = (400, "UnknownOperationException")  # AWS's JSON services, for an unknown X-Amz-Target
REST = (404, "UnknownOperationException")  # REST services, for a path no operation serves

# (service, method, arguments, answer), a few per protocol (query, json, rest-json, rest-xml).
# If a moto upgrade implements one, pick another the local AWS still lacks.
UNIMPLEMENTED = [
    ("ec2", "describe_capacity_block_offerings", {"CapacityDurationHours": 24}, QUERY),
    ("sts", "decode_authorization_message", {"EncodedMessage": "x"}, QUERY),
    ("cloudformation", "describe_type", {"TypeName": "AWS::S3::Bucket", "Type": "RESOURCE"}, QUERY),
    ("ssm", "describe_automation_executions", {}, JSON),
    ("secretsmanager", "validate_resource_policy", {"ResourcePolicy": "{}"}, JSON),
    ("events", "list_endpoints", {}, JSON),
    ("lambda", "get_function_recursion_config", {"FunctionName": "f"}, REST),
    ("lambda", "list_code_signing_configs", {}, REST),
    ("route53", "list_cidr_collections", {}, REST),
    ("cloudfront", "list_cache_policies", {}, REST),
    # S3 sub-resources moto would answer with ListObjects, CreateBucket or DeleteBucket
    ("s3", "get_bucket_intelligent_tiering_configuration", {"Id": "a"}, REST),
    (
        "s3",
        "put_bucket_metrics_configuration",
        {"Id": "a", "MetricsConfiguration": {"Id": "a"}},
        REST,
    ),
    ("s3", "delete_bucket_analytics_configuration", {"Id": "a"}, REST),
]


@pytest.mark.parametrize(("service", "method", "arguments", "answer"), UNIMPLEMENTED)
def test_an_unimplemented_operation_answers_a_4xx_aws_error(
    local_aws: LocalAwsHandle,
    service: str,
    method: str,
    arguments: dict[str, Any],
    answer: tuple[int, str],
    template_bucket: str,
) -> None:
    """Never moto's HTML page with HTTP 500 (which SDKs retry, then cannot parse): AWS's
    Common Errors give InvalidAction (HTTP 400) for an action a query API does not know; JSON
    services answer UnknownOperationException (HTTP 400) for an unknown X-Amz-Target; REST
    services UnknownOperationException (HTTP 404) for a path no operation serves. The message
    names the operation and the way out."""
    bucket = template_bucket  # any bucket; moto's fallback for DELETE ?analytics deletes it
    client = local_aws.client(service, config=Config(retries={"max_attempts": 1}))
    if service == "s3":
        arguments = {"Bucket": bucket, **arguments}
    with pytest.raises(ClientError) as caught:
        getattr(client, method)(**arguments)
    response = caught.value.response
    assert (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]) == answer
    operation = client.meta.method_to_api_mapping[method]
    message = response["Error"]["Message"]
    assert "is not implemented by the local AWS" in message
    assert operation in message or service in message
    if service == "s3":  # and moto's fallback did not run: the bucket is still there
        client.head_bucket(Bucket=bucket)
