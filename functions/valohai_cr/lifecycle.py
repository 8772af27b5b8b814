"""crhelper with the guarantees every custom resource here needs.

On top of crhelper's response handling (PUT to the ResponseURL with retries, a timer that
answers FAILED 0.5 s before the Lambda deadline) this subclass makes sure that:
- each event gets exactly one response: when the timer has answered, the main path does not
  answer again (and the other way round);
- Delete answers at once (crhelper would sleep up to 120 s waiting for CloudWatch Logs);
- no polling clients are created at cold start (crhelper builds lambda, events and logs clients
  for a polling mode we do not use) and crhelper does not reconfigure logging on every call;
- every failure is a FAILED whose Reason is the cause in at most 256 characters, beginning kept;
- a response always carries a PhysicalResourceId (crhelper's timer and init-failure paths
  would send an empty one on Create, which CloudFormation refuses).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from crhelper import FAILED, CfnResource

from valohai_cr.errors import ResourceFailure, describe, shorten
from valohai_cr.resource import Provider
from valohai_cr.work import RESERVE_SECONDS, Work

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], "LambdaContext"], None]


class CustomResource(CfnResource):
    """One custom resource type: `build` makes its provider (errors there answer FAILED)."""

    def __init__(
        self, build: Callable[[], Provider], logger: Logger, *, reserve: float = RESERVE_SECONDS
    ) -> None:
        # CfnResource.__init__ is deliberately not called (see the module docstring); these are
        # the attributes crhelper 2.0.12's request path reads, with polling disabled.
        self._sleep_on_delete = 0
        self._create_func = self._update_func = self._delete_func = self._dispatch
        self._poll_create_func = self._poll_update_func = self._poll_delete_func = None
        self._timer: threading.Timer | None = None
        self._init_failed: Exception | None = None
        self._json_logging = False
        self._log_level = "INFO"
        self._boto_level = "ERROR"
        self._send_response = False
        self._polling_interval = 0
        self._sam_local = None
        self._region = os.getenv("AWS_REGION")
        self._ssl_verify = None
        self.Status = ""
        self.Reason = ""
        self.PhysicalResourceId = ""
        self.StackId = ""
        self.RequestId = ""
        self.LogicalResourceId = ""
        self.RequestType = ""
        self.Data: dict[str, str] = {}
        self.NoEcho = False
        self._event: dict[str, Any] = {}
        self._context: LambdaContext | None = None
        self._response_url = ""

        self._logger = logger
        self._reserve = reserve
        self._response_lock = threading.Lock()
        self._responded = False
        self._work: Work | None = None
        self._provider: Provider | None = None
        try:
            self._provider = build()
        except Exception as error:
            self.init_failure(ResourceFailure(f"The function could not start: {describe(error)}"))
        self.handler: Handler = logger.inject_lambda_context(
            self, log_event=False, clear_state=True
        )

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> None:
        with self._response_lock:
            self._responded = False
        self._work = Work.for_lambda(context, reserve=self._reserve)
        self._logger.append_keys(
            request_type=event.get("RequestType"),
            stack_id=event.get("StackId"),
            logical_resource_id=event.get("LogicalResourceId"),
            cfn_request_id=event.get("RequestId"),
        )
        super().__call__(event, context)

    def _dispatch(self, event: dict[str, Any], context: LambdaContext) -> str:
        # Both are set before crhelper calls this (a failed build never gets here).
        assert self._provider is not None
        assert self._work is not None
        typed = CloudFormationCustomResourceEvent(event)
        operation = {
            "Create": self._provider.create,
            "Update": self._provider.update,
            "Delete": self._provider.delete,
        }[typed.request_type]
        result = operation(typed, self._work)
        self.Data = dict(result.data)
        log.info(
            "%s succeeded", typed.request_type, extra={"physical_resource_id": result.physical_id}
        )
        return result.physical_id

    def _wrap_function(self, func: Callable[[dict[str, Any], Any], str] | None) -> None:
        try:
            self.PhysicalResourceId = func(self._event, self._context) if func else ""
        except Exception as error:
            self.Status = FAILED
            self.Reason = shorten(describe(error))
            if isinstance(error, ResourceFailure):
                log.error("%s failed: %s", self._event.get("RequestType"), self.Reason)
            else:
                log.exception("%s failed unexpectedly", self._event.get("RequestType"))

    def _timeout(self) -> None:
        step = self._work.current_step if self._work else "starting"
        log.error("About to reach the Lambda deadline while %s: answering FAILED", step)
        self._send(FAILED, f"Timed out while {step}: the function reached its Lambda timeout")

    def _send(self, status: str | None = None, reason: str = "", *_: object) -> None:
        with self._response_lock:
            if self._responded:
                log.warning("Not answering this event twice: a response went out already")
                return
            self._responded = True
        if not self.PhysicalResourceId:
            self.PhysicalResourceId = self._event.get(
                "PhysicalResourceId"
            ) or self.generate_physical_id(self._event)
        self.Reason = shorten(self.Reason)
        super()._send(status, shorten(reason))  # type: ignore[misc]  # private: not in the stub

    def _log_setup(self, event: dict[str, Any], context: LambdaContext) -> None:
        """Logging is configured once, by `runtime.logger`, not by crhelper on every call."""
