"""SSM: parameters by ARN (AWS's public parameters have no account in theirs)."""

from __future__ import annotations

from typing import Any

from moto.utilities.utils import get_partition

from localaws.iam.targets import Service, Target


def _targets(response: Any, action: str) -> list[Target]:
    account, region = response.current_account, response.region
    partition = get_partition(region)
    names = response._get_param("Names") or [
        n for n in (response._get_param("Name"), response._get_param("Path")) if n
    ]
    if response._get_param("ResourceType") == "Parameter":
        names = [response._get_param("ResourceId")]
    if not names:
        return [Target("*", account)]
    targets = []
    for name in names:
        if name.startswith("arn:"):
            targets.append(Target(name, name.split(":")[4]))
            continue
        path = name.lstrip("/")
        # AWS's public parameters belong to no account: their ARNs have none.
        owner = "" if path.startswith("aws/service/") else account
        targets.append(Target(f"arn:{partition}:ssm:{region}:{owner}:parameter/{path}", owner))
    return targets


SERVICE = Service(_targets)
