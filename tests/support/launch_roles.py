"""What each statement of a launch role is needed for, from a recorded launch.

With IAM enforced, the local AWS records every access it makes as a stack's role (each resource
operation's handler permissions, the templates it reads) at `GET /_localaws/accesses`, and can
judge recorded accesses again against the policies as they are now
(`POST /_localaws/accesses/judge`). So instead of a launch per statement: record one launch,
update and termination, then remove each statement of the role's policy in turn and ask which
recorded operations the role could no longer perform.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import Any

from localaws.harness import LocalAwsHandle

#: An access's purpose, as the local CloudFormation words it: "<operation> of <logical id>
#: (<type>) in stack <name>", "template of stack <name>" or "template of nested stack
#: <logical id> in <name>" or "parameter <name> of stack <name>".
_RESOURCE_OPERATION = re.compile(r"(?P<op>create|update|delete) of (?P<what>\S+ \(\S+\)) in stack ")
_NESTED_TEMPLATE = re.compile(r"template of nested stack (?P<what>\S+) in ")
_PARAMETER = re.compile(r"parameter (?P<name>\S+) of stack ")

Operations = dict[str, list[dict[str, Any]]]


def stack_accesses(local: LocalAwsHandle, stack_name: str) -> list[dict[str, Any]]:
    """Every recorded access of a stack and of its nested stacks (named after it), oldest
    first."""
    return [a for a in local.control("accesses") if stack_name in a["Purpose"]]


def operations(accesses: Iterable[Mapping[str, Any]], phase: str) -> Operations:
    """The accesses by what they were for, named without the stack ("launch: create of
    DataBucket (AWS::S3::Bucket)"); the same resource in two nested stacks (each subnet) is
    one operation. Each access once."""
    found: Operations = {}
    for one in accesses:
        purpose = str(one["Purpose"])
        match = _RESOURCE_OPERATION.match(purpose)
        if match:
            label = f"{phase}: {match['op']} of {match['what']}"
        elif nested := _NESTED_TEMPLATE.match(purpose):
            label = f"{phase}: read the template of nested stack {nested['what']}"
        elif parameter := _PARAMETER.match(purpose):
            label = f"{phase}: resolve the SSM parameter {parameter['name']}"
        elif purpose.startswith("template of stack "):
            label = f"{phase}: read the template"
        else:
            raise AssertionError(f"an access of an unknown purpose: {purpose}")
        kept = found.setdefault(label, [])
        if not any(_same_check(one, k) for k in kept):
            kept.append(dict(one))
    return found


def _same_check(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    keys = ("PrincipalArn", "Action", "Resource", "ResourceAccount", "Context")
    return all(one[k] == other[k] for k in keys)


def denied(local: LocalAwsHandle, recorded: Operations) -> dict[str, str]:
    """The recorded operations the policies as they are now would deny: label -> AWS's
    message for the first denied access."""
    labels = list(recorded)
    answer = local.control("accesses/judge", {"operations": [recorded[k] for k in labels]})
    return {label: d for label, d in zip(labels, answer["denials"], strict=True) if d}


@contextmanager
def inline_policy(iam: Any, role: str, name: str) -> Iterator[dict[str, Any]]:
    """The role's inline policy document; whatever the block puts there, the document is put
    back when it ends."""
    original: dict[str, Any] = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    try:
        yield original
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))


def without(document: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """The policy document without its statement `sid`."""
    kept = [s for s in document["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"no single statement {sid}"
    return {**document, "Statement": kept}


def statement_needs(
    local: LocalAwsHandle, role: str, policy: str, recorded: Operations
) -> dict[str, dict[str, str]]:
    """For each statement (by Sid) of the role's inline policy: the recorded operations that
    fail without it, each with the denial message. The role's policy is restored after.

    The policy allows everything recorded and has only Allow statements, so removing one can
    deny only an access whose action that statement names: only those are judged again (the
    engine still decides them, with every other statement in place)."""
    iam = local.client("iam")
    needs: dict[str, dict[str, str]] = {}
    with inline_policy(iam, role, policy) as document:
        assert {s["Effect"] for s in document["Statement"]} == {"Allow"}
        for statement in document["Statement"]:
            sid = str(statement["Sid"])
            named = actions_of(document["Statement"], sid)
            affected = {
                label: kept
                for label, accesses in recorded.items()
                if (kept := [a for a in accesses if _names(named, str(a["Action"]))])
            }
            iam.put_role_policy(
                RoleName=role, PolicyName=policy, PolicyDocument=json.dumps(without(document, sid))
            )
            needs[sid] = denied(local, affected) if affected else {}
    return needs


def _names(actions: set[str], action: str) -> bool:
    """Whether a statement's Action (names or wildcards, case-insensitive) covers `action`."""
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in actions)


def table(needs: Mapping[str, Mapping[str, str]]) -> str:
    """The evidence as a readable table (statement -> operations that need it)."""
    lines = []
    for sid, failing in needs.items():
        lines.append(f"{sid}: {len(failing)} operation(s)")
        lines += [f"    {label}" for label in sorted(failing)]
    return "\n".join(lines)


def actions_of(statements: Sequence[Mapping[str, Any]], sid: str) -> set[str]:
    (statement,) = [s for s in statements if s.get("Sid") == sid]
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)
