"""Failures worded for the person who reads the stack events, and how they become a Reason."""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError

#: CloudFormation shows at most this many characters of a Reason.
REASON_LIMIT = 256


class ResourceFailure(Exception):
    """A failure whose message is what CloudFormation should show as the Reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PropertyError(ResourceFailure):
    """A property is missing or malformed: the message names it and what a valid value is."""


class OutOfTime(ResourceFailure):
    """The invocation's time budget ran out before a step could start or finish."""


def aws_reason(error: ClientError | BotoCoreError) -> str:
    """`CreateSecret: ThrottlingException: Rate exceeded` rather than botocore's long sentence."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Error")
        message = details.get("Message", "")
        return f"{error.operation_name}: {code}: {message}".rstrip(": ")
    return str(error)


def describe(error: BaseException) -> str:
    """The Reason for any exception; unexpected ones keep their type so they can be told apart."""
    if isinstance(error, ResourceFailure):
        return error.reason
    if isinstance(error, ClientError | BotoCoreError):
        return f"AWS call failed: {aws_reason(error)}"
    return f"Internal error ({type(error).__name__}): {error}"


def shorten(text: str, limit: int = REASON_LIMIT) -> str:
    """One line of at most `limit` characters, keeping the beginning (where the cause is)."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."
