"""The SAM transform (AWS::Serverless-2016-10-31) applied offline, as CloudFormation applies it.

moto accepts a template with `Transform: AWS::Serverless-2016-10-31`, reports success and creates
none of its serverless resources. Translating it first with samtranslator (the library AWS's
own transform runs) gives the plain CloudFormation template a deployment would see.

Nothing here touches the network: AWS managed policy names resolve from samtranslator's bundled
map and, for newer policies, from the list moto keeps (instead of IAM ListPolicies), and
applications from the Serverless Application Repository are refused with the fix.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import boto3
from moto.iam.aws_managed_policies import aws_managed_policies_data
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def transform(
    template: dict[str, Any],
    parameters: dict[str, str],
    *,
    account_id: str,
    region: str,
    partition: str = "aws",
) -> dict[str, Any]:
    """The template with the SAM transform applied; a copy as is if its Transform lacks it.

    `parameters` are the stack's parameter values (defaults come from the template). Raises
    ValueError naming each problem and its fix when the template cannot be transformed.
    """
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ValueError(
            "A template is a mapping with a Resources mapping; parse the YAML or JSON document "
            "into a dict before transforming it."
        )
    declared = template.get("Transform") or []
    transforms = [declared] if isinstance(declared, str) else list(declared)
    if SAM_TRANSFORM not in transforms:
        return copy.deepcopy(template)
    others = [name for name in transforms if name != SAM_TRANSFORM]
    if others:
        raise ValueError(
            f"The template also declares the transform(s) {', '.join(map(str, others))}, which "
            f"the local AWS cannot apply. Remove them and keep only {SAM_TRANSFORM}."
        )
    _refuse_repository_applications(template["Resources"])

    document = copy.deepcopy(template)
    values: dict[str, Any] = {
        **parameters,
        "AWS::AccountId": account_id,
        "AWS::Region": region,
        "AWS::Partition": partition,
    }
    # As AWS's transform does, so that generated logical ids (hashes) match a real deployment.
    to_py27_compatible_template(document, values)
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        # Only its region is read; no client is ever made from it.
        boto_session=boto3.Session(region_name=region),
    )
    try:
        translated = translator.translate(
            document,
            parameter_values=values,
            get_managed_policy_map=functools.partial(_managed_policies, partition),
        )
    except InvalidDocumentException as exc:
        raise ValueError(_describe(exc)) from exc
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    _check_managed_policies(result["Resources"])
    return result


@functools.cache
def _managed_policies(partition: str) -> dict[str, str]:
    """AWS managed policy names -> ARNs, from the copy of IAM's list that moto keeps."""
    policies = json.loads(aws_managed_policies_data)
    return {
        name: f"arn:{partition}:iam::aws:policy{policy.get('Path', '/')}{name}"
        for name, policy in policies.items()
    }


def _refuse_repository_applications(resources: dict[str, Any]) -> None:
    for logical_id, resource in resources.items():
        location = (resource.get("Properties") or {}).get("Location")
        if resource.get("Type") == "AWS::Serverless::Application" and isinstance(location, dict):
            raise ValueError(
                f"Resource {logical_id} is an application from the Serverless Application "
                f"Repository ({location.get('ApplicationId')}), which cannot be fetched offline. "
                "Download its template and give Location as the template's S3 URL instead."
            )


def _describe(exc: InvalidDocumentException) -> str:
    problems = "\n".join(f"- {cause.message}" for cause in exc.causes)
    fixes = ["Fix the template (`sam validate --lint` explains each problem)."]
    if "S3 Uri" in problems or "CodeUri" in problems:
        fixes.append(
            "Code given as a local path must be uploaded first: `sam package`, or CodeUri "
            "s3://bucket/key (or {Bucket, Key}) of an uploaded zip."
        )
    return f"The SAM transform failed:\n{problems}\n{' '.join(fixes)}"


def _check_managed_policies(resources: dict[str, Any]) -> None:
    """A policy name SAM could not resolve stays a bare name, which IAM rejects at deploy time."""
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            if isinstance(arn, str) and not arn.startswith("arn:"):
                raise ValueError(
                    f"Role {logical_id} lists the managed policy {arn!r}, which is neither an AWS "
                    "managed policy nor an ARN. Use an AWS managed policy name (as IAM lists "
                    "them), a policy ARN, or a SAM policy template."
                )
