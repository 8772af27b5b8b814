"""Per service, how its requests are authorized: one module per service, each naming the
resources a request acts on as AWS does and the error its denial answers (`targets.Service`).

A service absent from `SERVICES` passes unchecked: its resources are not named here yet, and a
guess would deny what AWS allows. S3 is authorized through moto's own S3 hook (`s3`).
"""

from __future__ import annotations

from localaws.iam.targets import Service

from . import cloudformation, secretsmanager, sqs, ssm, sts

SERVICES: dict[str, Service] = {
    "cloudformation": cloudformation.SERVICE,
    "secretsmanager": secretsmanager.SERVICE,
    "sqs": sqs.SERVICE,
    "ssm": ssm.SERVICE,
    "sts": sts.SERVICE,
}

__all__ = ["SERVICES"]
