"""The public SSM parameters the product templates read, backed by images in moto's EC2.

AWS publishes Canonical's current Ubuntu images under /aws/service/canonical/...; moto only
knows Amazon Linux ones. Reading any Canonical parameter in a region registers an Ubuntu 24.04
image there (public, owned by Canonical's account) and publishes its id under the paths the
templates use, so `AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>` works as in AWS.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id
from moto.ssm.models import Parameter, ParameterDict

CANONICAL_PREFIX = "/aws/service/canonical/"
CANONICAL_OWNER = "099720109477"
UBUNTU_IMAGES = {
    # path under /aws/service/canonical/ubuntu/server/: (architecture, volume type)
    "24.04/stable/current/amd64/hvm/ebs-gp3/ami-id": ("x86_64", "gp3"),
    "24.04/stable/current/arm64/hvm/ebs-gp3/ami-id": ("arm64", "gp3"),
}
_LOADED = "localaws_canonical_loaded"

_original_check: Any = None


def install() -> None:
    """Idempotent: wrap moto's lazy loading of public parameters."""
    global _original_check
    if _original_check is not None:
        return
    _original_check = ParameterDict._check_loading_status

    def check(self: ParameterDict, key: str) -> None:
        _original_check(self, key)
        if str(key or "").startswith(CANONICAL_PREFIX) and not getattr(self, _LOADED, False):
            setattr(self, _LOADED, True)
            _publish_ubuntu(self)

    ParameterDict._check_loading_status = check  # type: ignore[method-assign]


def _publish_ubuntu(parameters: ParameterDict) -> None:
    ec2 = ec2_backends[parameters.account_id][parameters.region_name]
    for path, (architecture, volume) in UBUNTU_IMAGES.items():
        ami_id = random_ami_id()
        serial = datetime.now(UTC).strftime("%Y%m%d")
        ec2.amis[ami_id] = Ami(
            ec2,
            ami_id,
            name=(
                f"ubuntu/images/hvm-ssd-{volume}/ubuntu-noble-24.04-"
                f"{'amd64' if architecture == 'x86_64' else 'arm64'}-server-{serial}"
            ),
            description=f"Canonical, Ubuntu, 24.04, {architecture} noble image",
            owner_id=CANONICAL_OWNER,
            public=True,
            virtualization_type="hvm",
            architecture=architecture,
            root_device_type="ebs",
            root_device_name="/dev/sda1",
            region_name=parameters.region_name,
        )
        name = f"{CANONICAL_PREFIX}ubuntu/server/{path}"
        defaultdict.__getitem__(parameters, name).append(
            Parameter(  # type: ignore[abstract]  # moto instantiates it the same way
                account_id=parameters.account_id,
                name=name,
                value=ami_id,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=1,
                data_type="aws:ec2:image",
            )
        )
