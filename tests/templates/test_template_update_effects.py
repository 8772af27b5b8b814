"""The README's table of what an update of each Workers parameter does to the queue machine
agrees with the templates.

The effect is derived by following each parameter of main.yml into worker-queue.yml and onto
the queue machine's properties, with what AWS documents for an update of each property of
AWS::EC2::Instance ("Update requires"): a new ImageId, KeyName or SubnetId replaces the
instance; a new InstanceType or UserData stops and starts it (the setup then runs the new user
data); and a security group with a fixed GroupName cannot be replaced, so an update that would
replace it fails.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.cfn import REPO, load, walk

REPLACES = {"ImageId", "KeyName", "SubnetId"}
RESTARTS = {"InstanceType", "UserData"}
#: Attributes that change with a property of their resource: the Redis secret's ARN changes
#: only with its name (Custom::ValohaiRedisSecret makes a new secret for a new name).
ATTRIBUTE_FOLLOWS = {"RedisSecret.Arn": {"SecretName"}}
#: Outputs of the nested network stack, and which of its parameters change them: a new CIDR
#: replaces the VPC and its subnets; the number of AZs only adds or removes later subnets.
NETWORK_OUTPUT_FOLLOWS = {"VpcId": {"VpcCidr"}, "FirstSubnetId": {"VpcCidr"}}
SEVERITY = ["none", "restart", "replacement", "fails"]


def names_in(node: Any) -> set[str]:
    """Every parameter or resource (attribute) a value refers to by Ref, GetAtt or Fn::Sub."""
    found: set[str] = set()
    for _, value in walk(node):
        if not isinstance(value, dict) or len(value) != 1:
            continue
        ((function, argument),) = value.items()
        if function == "Ref":
            found.add(argument)
        elif function == "Fn::GetAtt":
            found.add(".".join(argument) if isinstance(argument, list) else argument)
        elif function == "Fn::Sub":
            text = argument[0] if isinstance(argument, list) else argument
            found.update(re.findall(r"\$\{([A-Za-z0-9_:.]+)\}", text))
    return found


def feeds(main_parameter: str) -> set[str]:
    """The worker-queue.yml parameters whose value changes with a main.yml parameter."""
    main = load("main.yml")["Resources"]
    network_inputs = {
        name: names_in(value) for name, value in main["Network"]["Properties"]["Parameters"].items()
    }
    fed = set()
    for name, value in main["WorkerQueue"]["Properties"]["Parameters"].items():
        for reference in names_in(value):
            if reference == main_parameter:
                fed.add(name)
            elif reference.startswith("Network.Outputs."):
                output = reference.removeprefix("Network.Outputs.")
                for network_parameter in NETWORK_OUTPUT_FOLLOWS.get(output, set()):
                    if main_parameter in network_inputs[network_parameter]:
                        fed.add(name)
    return fed


def effect_of(worker_queue_parameter: str) -> str:
    """What a new value of a worker-queue.yml parameter does to the queue machine."""
    resources = load("worker-queue.yml")["Resources"]

    def changes(reference: str) -> bool:
        if reference == worker_queue_parameter:
            return True
        properties = ATTRIBUTE_FOLLOWS.get(reference, set())
        resource = reference.split(".")[0]
        return any(
            worker_queue_parameter in names_in(resources[resource]["Properties"].get(p))
            for p in properties
        )

    effects = {"none"}
    for name, resource in resources.items():
        properties = resource["Properties"]
        for key, value in properties.items():
            if not any(changes(r) for r in names_in(value)):
                continue
            if resource["Type"] == "AWS::EC2::SecurityGroup" and key == "VpcId":
                effects.add("fails" if "GroupName" in properties else "none")
            if name == "QueueInstance" and key in REPLACES:
                effects.add("replacement")
            if name == "QueueInstance" and key in RESTARTS:
                effects.add("restart")
    return max(effects, key=SEVERITY.index)


def documented() -> dict[str, str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### What an update does to the queue machine", 1)[1]
    table = section.split("\n\n| Parameter |", 1)[1].split("\n\n", 1)[0]
    effects = {}
    for row in table.splitlines()[2:]:
        names, effect = row.strip("|").split("|", 1)
        keyword = re.match(r"\s*\*\*(\w+)\*\*", effect)
        assert keyword, row
        for name in re.findall(r"`(\w+)`", names):
            assert name not in effects, f"{name} is in the table twice"
            effects[name] = keyword.group(1)
    return effects


def test_every_workers_parameter_has_one_documented_effect() -> None:
    assert set(documented()) == set(load("main.yml")["Parameters"])


def test_the_documented_effects_follow_from_the_templates() -> None:
    derived = {
        parameter: max(["none", *(effect_of(fed) for fed in feeds(parameter))], key=SEVERITY.index)
        for parameter in load("main.yml")["Parameters"]
    }
    assert documented() == derived


def test_every_user_data_value_restarts_the_machine() -> None:
    """What the boot script substitutes is exactly what an update restarts the machine for."""
    restarting = {p for p in load("worker-queue.yml")["Parameters"] if effect_of(p) == "restart"}
    assert restarting == {
        "QueueAddress",
        "WorkerQueueVersion",
        "RedisPasswordRotationToken",
        "RedisSecretName",
        "QueueInstanceType",
    }
