"""Importing this module registers every provisioner of the service modules beside it."""

from . import (  # noqa: F401
    awslambda,
    ec2,
    ec2_instance,
    ec2_security,
    events,
    iam,
    kms,
    logs,
    s3,
    secretsmanager,
    sqs,
    ssm,
)
