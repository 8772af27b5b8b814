"""Publishing the platform stack: artifacts bucket, packaged release, `sam build`, `sam deploy`.

One code path for AWS (`make publish`) and for the local AWS (the demo and the tests): only
the credentials and AWS_ENDPOINT_URL differ. Every problem a maintainer can fix is a
PublishError whose message says what to do; nothing else is caught.

The modules follow its seams: `options` (what it is given and settles first), `bucket` (the
artifacts bucket and the releases in it), `sam` (build and deploy), `orchestration` (the whole
run). Their public names are importable from here, as before the split.
"""

from __future__ import annotations

from .bucket import (
    bucket_policy,
    ensure_bucket,
    offered_releases,
    package_release,
)
from .options import (
    BUILD_DIR,
    BUILD_STAMP,
    PACKAGE_NAME,
    RUNTIME_PYTHON,
    SAM_IN_PROJECT,
    SAMCONFIG,
    TEMPLATE,
    TEMPLATE_SLOTS,
    Log,
    Published,
    PublishError,
    PublishOptions,
    Target,
    parse_overrides,
    release_version,
    resolve_target,
    samconfig,
)
from .orchestration import (
    deprecate_earlier_versions,
    package_only,
    publish,
    report,
)
from .sam import (
    build,
    deploy,
    find_sam,
)

__all__ = [
    "BUILD_DIR",
    "BUILD_STAMP",
    "PACKAGE_NAME",
    "RUNTIME_PYTHON",
    "SAMCONFIG",
    "SAM_IN_PROJECT",
    "TEMPLATE",
    "TEMPLATE_SLOTS",
    "Log",
    "PublishError",
    "PublishOptions",
    "Published",
    "Target",
    "bucket_policy",
    "build",
    "deploy",
    "deprecate_earlier_versions",
    "ensure_bucket",
    "find_sam",
    "offered_releases",
    "package_only",
    "package_release",
    "parse_overrides",
    "publish",
    "release_version",
    "report",
    "resolve_target",
    "samconfig",
]
