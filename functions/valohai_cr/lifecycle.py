"""The request path every custom resource here shares: check, act, answer exactly once.

Anyone allowed to invoke a function can send it an event, so before a provider acts:
- an event whose ResponseURL is not CloudFormation's response bucket in this region is neither
  acted on nor answered (the function would PUT wherever the caller pointed it);
- a malformed event is answered FAILED, naming what is wrong;
- the stack must have the logical resource in progress for that request type, read from
  CloudFormation (`origin.confirm`): a forged or replayed request is answered FAILED and
  changes nothing.

Then exactly one answer goes out, PUT with a bounded number of tries (`answer.put`): the
provider's result, FAILED with the cause in at most 256 characters, or FAILED from a timer
shortly before the Lambda deadline naming the step in progress. Nothing of one invocation is
kept for the next (crhelper, used before, kept the event on the instance and could answer the
previous request's URL); Delete never sleeps.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

from valohai_cr import answer, origin
from valohai_cr.errors import ResourceFailure, describe, shorten
from valohai_cr.resource import Provider
from valohai_cr.work import RESERVE_SECONDS, Work

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cloudformation import CloudFormationClient

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], "LambdaContext"], None]

SUCCESS = "SUCCESS"
FAILED = "FAILED"
#: The timer answers this long before the Lambda deadline, and its PUT may take most of it.
TIMER_LEAD_SECONDS = 1.5
_TIMER_ANSWER_SECONDS = 1.2
#: Every answer's PUTs end this long before the deadline.
_ANSWER_MARGIN_SECONDS = 0.2


class CustomResource:
    """One custom resource type: `build` makes its provider (errors there answer FAILED);
    `cloudformation` makes the client that confirms each request (once, at first use)."""

    def __init__(
        self,
        build: Callable[[], Provider],
        logger: Logger,
        *,
        cloudformation: Callable[[], CloudFormationClient],
        reserve: float = RESERVE_SECONDS,
    ) -> None:
        self._logger = logger
        self._reserve = reserve
        self._make_cloudformation = cloudformation
        self._cloudformation: CloudFormationClient | None = None
        self._provider: Provider | None = None
        self._init_failure: ResourceFailure | None = None
        try:
            self._provider = build()
        except Exception as error:
            log.exception("The function could not start")
            self._init_failure = ResourceFailure(f"The function could not start: {describe(error)}")
        self.handler: Handler = logger.inject_lambda_context(
            self._handle, log_event=False, clear_state=True
        )

    def _handle(self, event: Any, context: LambdaContext) -> None:
        partition, _, _, account = _function_arn_parts(context.invoked_function_arn)
        region = os.environ.get("AWS_REGION", "")
        url = origin.answerable_url(event, region, partition)
        if url is None:
            log.error(
                "Not acting on this event: its ResponseURL is not CloudFormation's response "
                "bucket in %s, so it is not a CloudFormation request",
                region,
            )
            return
        self._logger.append_keys(
            request_type=_text(event.get("RequestType")),
            stack_id=_text(event.get("StackId")),
            logical_resource_id=_text(event.get("LogicalResourceId")),
            cfn_request_id=_text(event.get("RequestId")),
        )
        work = Work.for_lambda(context, reserve=self._reserve)
        exchange = _Exchange(url, event, context)
        seconds_left = context.get_remaining_time_in_millis() / 1000
        timer = threading.Timer(
            max(0.0, seconds_left - TIMER_LEAD_SECONDS), exchange.time_out, [work]
        )
        timer.daemon = True
        timer.start()
        try:
            status, reason, physical_id, data = self._run(event, work, region, account)
        finally:
            timer.cancel()
        exchange.answer(status, reason, physical_id, data, seconds=answer.BUDGET_SECONDS)

    def _run(
        self, event: dict[str, Any], work: Work, region: str, account: str
    ) -> tuple[str, str, str | None, dict[str, str]]:
        request_type = event.get("RequestType")
        try:
            if self._init_failure is not None:
                raise self._init_failure
            request = origin.well_formed(event)
            with work.step("checking the request with CloudFormation"):
                origin.confirm(request, self._client(), region=region, account=account)
            assert self._provider is not None  # no init failure
            operation = {
                "Create": self._provider.create,
                "Update": self._provider.update,
                "Delete": self._provider.delete,
            }[request.request_type]
            result = operation(CloudFormationCustomResourceEvent(event), work)
        except Exception as error:
            reason = shorten(describe(error))
            if isinstance(error, ResourceFailure):
                log.error("%s failed: %s", _text(request_type), reason)
            else:
                log.exception("%s failed unexpectedly", _text(request_type))
            return FAILED, reason, None, {}
        log.info(
            "%s succeeded", request.request_type, extra={"physical_resource_id": result.physical_id}
        )
        return SUCCESS, "", result.physical_id, dict(result.data)

    def _client(self) -> CloudFormationClient:
        if self._cloudformation is None:
            self._cloudformation = self._make_cloudformation()
        return self._cloudformation


class _Exchange:
    """One request's answer: whichever of the main path and the timer comes first sends it."""

    def __init__(self, url: str, event: dict[str, Any], context: LambdaContext) -> None:
        self._url = url
        self._event = event
        self._context = context
        self._lock = threading.Lock()
        self._answered = False

    def time_out(self, work: Work) -> None:
        log.error(
            "About to reach the Lambda deadline while %s: answering FAILED", work.current_step
        )
        self.answer(
            FAILED,
            f"Timed out while {work.current_step}: the function reached its Lambda timeout",
            None,
            {},
            seconds=_TIMER_ANSWER_SECONDS,
        )

    def answer(
        self,
        status: str,
        reason: str,
        physical_id: str | None,
        data: dict[str, str],
        *,
        seconds: float,
    ) -> None:
        """Send the answer unless one went out; the PUTs take at most `seconds`, and end
        before the Lambda deadline.

        The lock is held until the PUT ends: when the timer is still sending its answer, the
        main path waits for it, because Lambda freezes the environment once the handler
        returns and an answer still in flight would then never reach CloudFormation."""
        with self._lock:
            if self._answered:
                log.warning("Not answering this event twice: a response went out already")
                return
            self._answered = True
            self._put(self._body(status, reason, physical_id, data), seconds)

    def _body(
        self, status: str, reason: str, physical_id: str | None, data: dict[str, str]
    ) -> dict[str, Any]:
        event = self._event
        return {
            "Status": status,
            "Reason": shorten(reason),
            "PhysicalResourceId": physical_id or _fallback_physical_id(event),
            # A malformed identifier matches no request anyway: it is echoed only if it could,
            # so that the answer stays within CloudFormation's 4096 bytes.
            "StackId": _text(event.get("StackId"), 512),
            "RequestId": _text(event.get("RequestId"), 128),
            "LogicalResourceId": _text(event.get("LogicalResourceId"), 255),
            "NoEcho": False,
            "Data": data,
        }

    def _put(self, body: dict[str, Any], seconds: float) -> None:
        left = self._context.get_remaining_time_in_millis() / 1000 - _ANSWER_MARGIN_SECONDS
        if answer.put(self._url, body, seconds=min(seconds, left)):
            log.info("Answered %s", body["Status"])


def _fallback_physical_id(event: dict[str, Any]) -> str:
    """The event's id, else one derived from the request (the same on a retry): CloudFormation
    refuses an answer without one, and its rollback Delete then carries this id."""
    existing = event.get("PhysicalResourceId")
    if isinstance(existing, str) and existing:
        return existing[:1024]
    stack_id = _text(event.get("StackId"))
    stack = stack_id.split("/")[1] if stack_id.count("/") >= 2 else "stack"
    logical = _text(event.get("LogicalResourceId")) or "resource"
    digest = hashlib.sha256(_text(event.get("RequestId")).encode()).hexdigest()[:8].upper()
    return f"{stack[:128]}_{logical[:128]}_{digest}"


def _text(value: Any, limit: int = 1024) -> str:
    return value if isinstance(value, str) and len(value) <= limit else ""


def _function_arn_parts(arn: str) -> tuple[str, str, str, str]:
    """(partition, service, region, account) of the invoked function's ARN."""
    parts = (arn.split(":") + [""] * 5)[1:5]
    return parts[0] or "aws", parts[1], parts[2], parts[3]
