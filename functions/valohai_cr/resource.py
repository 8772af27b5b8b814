"""What a custom-resource provider implements; the request path lives in `lifecycle`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

from valohai_cr.work import Work


class Result(NamedTuple):
    """The PhysicalResourceId and the Data (never a secret value) of a successful operation."""

    physical_id: str
    data: Mapping[str, str]


class Provider(Protocol):
    def create(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result: ...

    def update(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result: ...

    def delete(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result: ...
