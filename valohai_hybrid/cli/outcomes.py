"""What a run of the console command ends with: exit codes, and the errors that choose them."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

OK, FAILED, USAGE, NO_ACCESS, STILL_RUNNING, INTERRUPTED = 0, 1, 2, 3, 4, 130
#: AWS error codes that mean "these credentials may not do this" rather than a failure.
ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}

EXIT_CODES_HELP = """exit codes:
  0    done (doctor: every check passed)
  1    it ran and failed (the message says why)
  2    nothing was done: fix the command line or the names it gives
  3    AWS could not be used: credentials, region, endpoint or permissions
  4    still running in AWS when --timeout ended the wait
  130  interrupted (an operation already started goes on in AWS)
"""


class UsageError(Exception):
    """A mistake the user can fix before anything is done; printed without a traceback."""


class OperationFailed(Exception):
    """The operation ran and failed; the message says why."""


# ---- local AWS, stand-in, docs ---------------------------------------------------------------


class NoAccess(Exception):
    """AWS cannot be used as configured (exit code 3)."""


def aws_problem(error: Exception) -> tuple[int, str]:
    """The exit code and message for an error from AWS or the AWS SDK."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        if code in ACCESS_CODES:
            return NO_ACCESS, f"AWS refused the credentials or the permission ({code}): {message}"
        operation = getattr(error, "operation_name", "the call")
        return FAILED, f"AWS refused {operation} ({code}): {message}"
    text = str(error)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        text += " (sign in: aws sso login, or set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
    elif isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        text += " (check the network, and AWS_ENDPOINT_URL if you set it)"
    return NO_ACCESS, text
