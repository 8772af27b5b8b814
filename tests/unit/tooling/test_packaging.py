"""Packaging the product templates into a versioned, immutable S3 release."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from valohai_hybrid.checkout import CFN
from valohai_hybrid.packaging import PackagingError, package

BUCKET = "release-artifacts"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def _template(s3: Any, url: str) -> dict[str, Any]:
    key = url.split(".amazonaws.com/", 1)[1]
    template: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return template


def test_every_nested_template_url_points_into_the_same_release(s3: Any) -> None:
    release = package(CFN, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")

    assert set(release.urls) == {
        "iam.yml",
        "main.yml",
        "network.yml",
        "subnet.yml",
        "s3bucket.yml",
        "worker-queue.yml",
    }
    prefix = f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/releases/1.2.0/"
    assert all(url.startswith(prefix) for url in release.urls.values())
    main = _template(s3, release.workers_template_url)
    nested = {
        name: resource["Properties"]["TemplateURL"]
        for name, resource in main["Resources"].items()
        if resource["Type"] == "AWS::CloudFormation::Stack"
    }
    assert sorted(nested.values()) == sorted(
        release.urls[n] for n in ("network.yml", "s3bucket.yml", "worker-queue.yml")
    )
    network = _template(s3, release.urls["network.yml"])
    subnet_urls = {
        r["Properties"]["TemplateURL"]
        for r in network["Resources"].values()
        if r["Type"] == "AWS::CloudFormation::Stack"
    }
    assert subnet_urls == {release.urls["subnet.yml"]}


def test_short_form_functions_survive_packaging(s3: Any) -> None:
    release = package(CFN, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")
    text = json.dumps(_template(s3, release.workers_template_url))
    assert '"Fn::GetAtt"' in text
    assert "!GetAtt" not in text
    assert "!Ref" not in text


def test_publishing_the_same_release_again_uploads_nothing(s3: Any) -> None:
    first = package(CFN, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")
    again = package(CFN, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")
    assert len(first.uploaded) == 6
    assert again.uploaded == []
    assert again.urls == first.urls


def test_a_release_cannot_change_once_published(s3: Any, tmp_path: Path) -> None:
    for path in CFN.glob("*.yml"):
        (tmp_path / path.name).write_text(path.read_text())
    package(tmp_path, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")
    subnet = tmp_path / "subnet.yml"
    subnet.write_text(subnet.read_text().replace("Description:", "Description: changed", 1))

    with pytest.raises(PackagingError, match="immutable: bump the version"):
        package(tmp_path, s3, bucket=BUCKET, region="eu-west-1", version="1.2.0")
    assert package(tmp_path, s3, bucket=BUCKET, region="eu-west-1", version="1.2.1").uploaded


def test_a_missing_nested_template_is_named(s3: Any, tmp_path: Path) -> None:
    (tmp_path / "main.yml").write_text(
        "Resources:\n  Child:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties: {TemplateURL: child.yml}\n"
    )
    with pytest.raises(PackagingError, match=r"main\.yml refers to child\.yml, which is not in"):
        package(
            tmp_path, s3, bucket=BUCKET, region="eu-west-1", version="1.0.0", roots=("main.yml",)
        )


@pytest.mark.parametrize("version", ["latest", "1.2", "v1.2.0", ""])
def test_a_release_needs_a_semantic_version(s3: Any, version: str) -> None:
    with pytest.raises(PackagingError, match="not a semantic version"):
        package(CFN, s3, bucket=BUCKET, region="eu-west-1", version=version)
