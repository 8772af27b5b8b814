"""IAM in the local AWS: moto's backend made to refuse the deletions AWS refuses (`models`),
and authorization of requests by a real policy engine (`engine`, `authorization`).

moto 5.2.5 already answers DeleteConflict for DeleteRole (instance profile, managed or inline
policies left) and DeleteInstanceProfile (roles left), but deletes a managed policy that is
still attached or still has other versions. `install()` makes DeletePolicy refuse those as AWS
documents (see `models`). AWS's managed policies are attachable in every account
(`aws_managed`).
"""

from __future__ import annotations

from . import aws_managed, models


def install() -> None:
    models.install()
    aws_managed.install()


__all__ = ["install"]
