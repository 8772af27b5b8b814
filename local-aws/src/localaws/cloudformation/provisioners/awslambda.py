"""Lambda functions, permissions and asynchronous invocation settings.

moto's Function model drops Architectures, Tags, DeadLetterConfig and LoggingConfig and
updates neither tags nor concurrency; its Permission model has no delete; it has no
EventInvokeConfig type. DeadLetterConfig and LoggingConfig are handed to moto as the Lambda
API would hand them; the local AWS's Lambda runtime keeps and uses them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import zipfile
from functools import partial
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException, UnknownPolicyException
from moto.awslambda.models import LambdaBackend, LambdaFunction, lambda_backends
from moto.utilities.utils import load_resource_as_str

from .base import Provisioned, ResourceContext, register
from .common import (
    MotoProvisioner,
    RecreatedOnUpdate,
    as_int,
    generated_name,
    name_or_generated,
    resource_tags,
    sync_tags,
)


def lambda_backend(ctx: ResourceContext) -> LambdaBackend:
    return lambda_backends[ctx.account_id][ctx.region]


def _inline_zip(source: str, runtime: str) -> str:
    """Code.ZipFile as CloudFormation deploys it: one index file, with cfnresponse for Python."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if runtime.startswith("python"):
            archive.writestr("index.py", source)
            archive.writestr(
                "cfnresponse.py", load_resource_as_str("awslambda/resources/cfnresponse.py.txt")
            )
        else:
            archive.writestr("index.js", source)
    return base64.b64encode(buffer.getvalue()).decode()


def _code(props: dict[str, Any]) -> dict[str, Any]:
    code = dict(props["Code"])
    if "ZipFile" in code:
        code["ZipFile"] = _inline_zip(code["ZipFile"], props.get("Runtime", ""))
    return code


def _configuration(props: dict[str, Any]) -> dict[str, Any]:
    """The settings UpdateFunctionConfiguration takes, with Lambda's defaults filled in."""
    return {
        "Description": props.get("Description", ""),
        "Handler": props.get("Handler"),
        "MemorySize": as_int(props.get("MemorySize")) or 128,
        "Role": props["Role"],
        "Runtime": props.get("Runtime"),
        "Timeout": as_int(props.get("Timeout")) or 3,
        "Environment": {"Variables": props.get("Environment", {}).get("Variables", {})},
        "Layers": props.get("Layers", []),
        "VpcConfig": props.get("VpcConfig", {}),
        "DeadLetterConfig": props.get("DeadLetterConfig", {}),
        "LoggingConfig": props.get("LoggingConfig", {}),
    }


@register
class Function(MotoProvisioner):
    """Ref is the function name, GetAtt Arn its unqualified ARN."""

    resource_type = "AWS::Lambda::Function"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = lambda_backend(ctx)
        spec = {
            **_configuration(props),
            "FunctionName": name_or_generated(ctx, props, "FunctionName", 64, mixed_case=True),
            "Code": _code(props),
            "PackageType": props.get("PackageType", "Zip"),
            "Architectures": props.get("Architectures", ["x86_64"]),
            "Tags": resource_tags(ctx, props),
        }
        for prop in ("TracingConfig", "EphemeralStorage", "ImageConfig"):
            if prop in props:
                spec[prop] = props[prop]
        if "KmsKeyArn" in props:
            spec["KMSKeyArn"] = props["KmsKeyArn"]
        if props.get("ReservedConcurrentExecutions") is not None:
            spec["ReservedConcurrentExecutions"] = as_int(props["ReservedConcurrentExecutions"])
        fn = backend.create_function(spec)
        arn = fn.function_arn.removesuffix(":$LATEST")
        return Provisioned(fn.function_name, {"Arn": arn})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = lambda_backend(ctx)
        fn: LambdaFunction = backend.get_function(current.physical_id)
        fn.update_configuration(_configuration(new_props))
        if old_props.get("Code") != new_props.get("Code"):
            fn.update_function_code(_code(new_props))
        # Settings moto's update_configuration leaves out, kept where its API reads them.
        fn.architectures = new_props.get("Architectures", ["x86_64"])
        fn.tracing_config = new_props.get("TracingConfig") or {"Mode": "PassThrough"}
        fn.ephemeral_storage = as_int(new_props.get("EphemeralStorage", {}).get("Size")) or 512
        fn.kms_key_arn = new_props.get("KmsKeyArn")
        concurrency = new_props.get("ReservedConcurrentExecutions")
        if concurrency is None:
            backend.delete_function_concurrency(fn.function_name)
        else:
            backend.put_function_concurrency(fn.function_name, str(as_int(concurrency)))
        arn = str(current.get_att("Arn"))
        sync_tags(
            resource_tags(ctx, new_props),
            backend.list_tags(arn),
            partial(backend.untag_resource, arn),
            partial(backend.tag_resource, arn),
        )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with contextlib.suppress(UnknownFunctionException):  # already gone
            lambda_backend(ctx).delete_function(current.physical_id)


@register
class Permission(MotoProvisioner):
    """A statement in the function's resource policy; Ref is its statement id."""

    resource_type = "AWS::Lambda::Permission"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        statement_id = generated_name(ctx, 100)
        optional = ("SourceArn", "SourceAccount", "PrincipalOrgID", "EventSourceToken")
        request: dict[str, Any] = {
            "StatementId": statement_id,
            "Action": props["Action"],
            "Principal": props["Principal"],
            **{key: props[key] for key in (*optional, "FunctionUrlAuthType") if key in props},
        }
        lambda_backend(ctx).add_permission(props["FunctionName"], None, json.dumps(request))  # type: ignore[arg-type]
        return Provisioned(statement_id, {"Id": statement_id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        # The function or the statement may be gone already.
        with contextlib.suppress(UnknownFunctionException, UnknownPolicyException):
            lambda_backend(ctx).remove_permission(props["FunctionName"], current.physical_id)


@register
class EventInvokeConfig(RecreatedOnUpdate):
    """Retries, event age and destinations of asynchronous invocations of a function.

    moto appends configurations and serves the first: an update replaces it, as
    PutFunctionEventInvokeConfig does.
    """

    resource_type = "AWS::Lambda::EventInvokeConfig"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        config: dict[str, Any] = {
            key: props[key]
            for key in ("DestinationConfig", "MaximumEventAgeInSeconds", "MaximumRetryAttempts")
            if key in props
        }
        for key in ("MaximumEventAgeInSeconds", "MaximumRetryAttempts"):
            if key in config:
                config[key] = as_int(config[key])
        lambda_backend(ctx).put_function_event_invoke_config(props["FunctionName"], config)
        return Provisioned(f"{props['FunctionName']}|{props['Qualifier']}")

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with contextlib.suppress(UnknownFunctionException):
            lambda_backend(ctx).get_function(props["FunctionName"]).event_invoke_config = []
