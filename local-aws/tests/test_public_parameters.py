"""Canonical's public Ubuntu parameters, as the product templates read them."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle
from moto import mock_aws

UBUNTU = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_ubuntu_parameter_names_a_canonical_image_of_the_region(
    local_aws: LocalAwsHandle, region: str
) -> None:
    parameter = local_aws.client("ssm", region).get_parameter(Name=UBUNTU)["Parameter"]
    image = local_aws.client("ec2", region).describe_images(ImageIds=[parameter["Value"]])
    [described] = image["Images"]
    assert parameter["DataType"] == "aws:ec2:image"
    assert described["OwnerId"] == "099720109477"
    assert described["Architecture"] == "x86_64"
    assert "ubuntu-noble-24.04" in described["Name"]


def test_canary_stock_moto_has_no_canonical_parameters() -> None:
    with mock_aws(), pytest.raises(ClientError, match="ParameterNotFound"):
        boto3.client("ssm", region_name="eu-west-1").get_parameter(Name=UBUNTU)
