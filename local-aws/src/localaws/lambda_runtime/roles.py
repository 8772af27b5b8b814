"""What Lambda does as a function's execution role, judged while IAM is enforced.

Lambda checks a function's role when it is set (CreateFunction, UpdateFunctionConfiguration:
the role must trust lambda.amazonaws.com), polls an SQS event source with the role (the role
needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue: Lambda
Developer Guide, "Using Lambda with Amazon SQS", execution role permissions; a mapping whose
role lacks one is refused at CreateEventSourceMapping), and sends a failed asynchronous event
to the function's dead-letter queue with the role (sqs:SendMessage or sns:Publish: "Asynchronous
invocation", dead-letter queues). The functions' own calls are signed with the role's session
keys (`environments._Environment.credentials`) and judged like any other request.
"""

from __future__ import annotations

from moto.awslambda.exceptions import LambdaClientError

from localaws import access
from localaws.iam import execution_roles
from localaws.iam.authorization import enforcing, judge_accesses

from .common import RoleNotAssumable

#: What Lambda's SQS poller calls, in the order the refusal names the first one missing.
SQS_POLLER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def check_role(role_arn: str | None) -> None:
    """Refuse a role Lambda cannot assume, as CreateFunction and UpdateFunctionConfiguration
    do; nothing is judged while enforcement is off."""
    if role_arn is not None and enforcing() and not execution_roles.service_may_assume(role_arn):
        raise RoleNotAssumable()


def denial(role_arn: str, function_name: str, action: str, resource_arn: str) -> str | None:
    """AWS's message if the function's execution role may not do `action` on the resource
    (its identity policies, and the resource's policy), else None; None while not enforced."""
    if not enforcing():
        return None
    session = access.role_session_arn(role_arn, function_name)
    one = access.Access(
        session,
        action,
        resource_arn,
        resource_arn.split(":")[4],
        f"Lambda acts as the execution role of {function_name}",
    )
    return judge_accesses([one])


def check_sqs_poller(role_arn: str, function_name: str, queue_arn: str) -> None:
    """CreateEventSourceMapping's check of an SQS source: the role must be able to poll."""
    for action in SQS_POLLER_ACTIONS:
        if denial(role_arn, function_name, action, queue_arn) is not None:
            raise LambdaClientError(
                "InvalidParameterValueException",
                "The provided execution role does not have permissions to call "
                f"{action.removeprefix('sqs:')} on SQS",
            )
