"""The IMDSv2 stand-in refuses what EC2's metadata service refuses with HttpTokens required,
and serves tags only when the instance allows them in its metadata."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support.imds_standin import (
    TOKEN_HEADER,
    TTL_HEADER,
    Instance,
    running_imds,
)


def instance(metadata_tags: bool) -> Instance:
    return Instance(
        user_data=b"#!/bin/bash\n",
        public_ipv4="203.0.113.10",
        role_name="ValohaiQueueRole",
        credentials={"AccessKeyId": "ASIAEXAMPLE"},
        tags={"Name": "valohai-queue", "valohai": "1"},
        metadata_tags=metadata_tags,
    )


def call(url: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.mark.parametrize("ttl", ["", "0", "21601", "ten"])
def test_a_token_needs_a_ttl_of_one_to_21600_seconds(ttl: str) -> None:
    with running_imds(instance(False)) as imds:
        headers = {TTL_HEADER: ttl} if ttl else {}
        assert call(f"{imds.endpoint}/latest/api/token", "PUT", **headers)[0] == 400


def test_reads_need_a_token_it_issued_and_proxies_get_none() -> None:
    with running_imds(instance(True)) as imds:
        url = f"{imds.endpoint}/latest/meta-data/public-ipv4"
        assert call(url)[0] == 401
        assert call(url, **{TOKEN_HEADER: "made-up"})[0] == 401
        forwarded = {TTL_HEADER: "60", "X-Forwarded-For": "10.0.0.1"}
        assert call(f"{imds.endpoint}/latest/api/token", "PUT", **forwarded)[0] == 403
        status, token = call(f"{imds.endpoint}/latest/api/token", "PUT", **{TTL_HEADER: "60"})
        assert status == 200
        assert call(url, **{TOKEN_HEADER: token}) == (200, "203.0.113.10")
        tags = f"{imds.endpoint}/latest/meta-data/tags/instance"
        assert call(tags, **{TOKEN_HEADER: token}) == (200, "Name\nvalohai")
        assert call(f"{tags}/valohai", **{TOKEN_HEADER: token}) == (200, "1")


def test_tags_are_not_served_unless_the_instance_allows_them() -> None:
    with running_imds(instance(False)) as imds:
        _, token = call(f"{imds.endpoint}/latest/api/token", "PUT", **{TTL_HEADER: "60"})
        tags = f"{imds.endpoint}/latest/meta-data/tags/instance"
        assert call(tags, **{TOKEN_HEADER: token})[0] == 404
