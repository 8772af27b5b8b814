"""What `valohai-hybrid publish` is given and settles before it touches AWS: the options, the
release version, samconfig.toml, and the target account, region, bucket and stack."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from valohai_hybrid.packaging import Release
from valohai_hybrid.products import WORKERS
from valohai_hybrid.templates import TemplateError, load_template

PACKAGE_NAME = "valohai-hybrid-aws"
TEMPLATE = "template.yaml"
SAMCONFIG = "samconfig.toml"
#: template.yaml has this many slots for releases, for principals and for shared accounts.
TEMPLATE_SLOTS = 5
SAM_IN_PROJECT = Path(".tools/sam/bin/sam")
BUILD_DIR = Path(".aws-sam/build")
BUILD_STAMP = ".valohai-hybrid-source.sha256"
#: The functions ship bytecode for the runtime's Python when the build finds one.
RUNTIME_PYTHON = "python3.13"
_RELEASE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_PRINCIPAL = re.compile(
    r"^arn:aws(-[a-z]+)*:iam::([0-9]{12})?:(user|role|group)/[A-Za-z0-9+=.@_/*?-]{1,512}$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND = ("404", "NoSuchBucket", "NotFound", "NoSuchKey")

Log = Callable[[str], None]


class PublishError(Exception):
    """A problem the maintainer can fix; the message says how."""


@dataclass(frozen=True)
class Target:
    """Where a release goes: the account's region and its artifacts bucket."""

    session: boto3.Session
    region: str
    account_id: str
    partition: str
    bucket: str

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)  # type: ignore[call-overload]


@dataclass(frozen=True)
class PublishOptions:
    """What `valohai-hybrid publish` takes; None means "the default" (see each field)."""

    project_dir: Path
    #: samconfig.toml environment: stack name and parameter overrides.
    config_env: str = "default"
    #: Default: the installed package's version (pyproject.toml).
    version: str | None = None
    #: Default: valohai-hybrid-artifacts-<account>-<region>.
    bucket: str | None = None
    #: Default: samconfig's region, else the AWS configuration's.
    region: str | None = None
    #: PrincipalArns; None keeps what the stack has.
    principals: Sequence[str] | None = None
    #: ShareWithAccounts; None keeps what the stack has.
    share_with: Sequence[str] | None = None
    #: Further template parameters (KEY=VALUE), over samconfig's parameter_overrides.
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: Default: .tools/sam/bin/sam in the project, else `sam` on PATH.
    sam: Path | None = None
    #: Default: cfn/ in the project.
    cfn_dir: Path | None = None
    #: Default: .aws-sam/build in the project (reused while functions/ and template.yaml
    #: stay the same).
    build_dir: Path | None = None
    #: Show sam's output as it runs (else only on failure).
    verbose: bool = True


@dataclass
class Published:
    """What a publish did, and how long each step took (seconds)."""

    stack_name: str
    region: str
    account_id: str
    bucket: str
    #: None in an account that only launches a portfolio another account shares.
    release: Release | None
    releases: list[str]
    outputs: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)


# ---- settings -------------------------------------------------------------------------------


def release_version(options: PublishOptions) -> str:
    """The version to publish, checked against the product templates' own version."""
    version = options.version or _package_version()
    if not _RELEASE.match(version):
        raise PublishError(
            f"release version {version!r} is not a semantic version such as 1.2.0 or "
            "1.3.0-rc.1 (no build metadata: '+' does not survive in S3 URLs)"
        )
    templates = _cfn_dir(options)
    root = templates / WORKERS.root_template
    declared = _template_version(root)
    if declared != version:
        raise PublishError(
            f"{root} declares version {declared} (Mappings Product Release "
            f"Version), which launched setups report to Valohai, but you are publishing "
            f"{version}: set it to {version} there (and in pyproject.toml), or publish {declared}"
        )
    return version


def _package_version() -> str:
    try:
        return installed_version(PACKAGE_NAME)
    except PackageNotFoundError as error:
        raise PublishError(
            f"{PACKAGE_NAME} is not installed, so its version is unknown: run `make install`, "
            "or give the version with --version"
        ) from error


def _template_version(path: Path) -> str:
    if not path.is_file():
        raise PublishError(f"{path} does not exist: give the product templates with --cfn-dir")
    try:
        decoded = load_template(path)
    except TemplateError as error:
        raise PublishError(f"{error}; run `make lint` to see why") from error
    try:
        return str(decoded["Mappings"]["Product"]["Release"]["Version"])
    except (KeyError, TypeError) as error:
        raise PublishError(
            f"{path} has no Mappings Product Release Version: it is not the Workers template"
        ) from error


def _cfn_dir(options: PublishOptions) -> Path:
    return options.cfn_dir or options.project_dir / "cfn"


def samconfig(options: PublishOptions) -> dict[str, Any]:
    """The settings of `options.config_env`: its global, build and deploy parameters, merged."""
    path = options.project_dir / SAMCONFIG
    if not path.is_file():
        raise PublishError(f"{path} does not exist: run from the repository root or --project-dir")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise PublishError(f"{path} is not valid TOML: {error}") from error
    environment = config.get(options.config_env)
    if not isinstance(environment, dict):
        known = sorted(k for k, v in config.items() if isinstance(v, dict))
        raise PublishError(
            f"{path} has no environment {options.config_env!r}: use one of {', '.join(known)}"
        )
    merged: dict[str, Any] = {}
    for command in ("global", "build", "deploy"):
        merged.update((environment.get(command) or {}).get("parameters") or {})
    if not merged.get("stack_name"):
        raise PublishError(f"{path}: environment {options.config_env!r} sets no stack_name")
    return merged


def parse_overrides(value: str | Sequence[str]) -> dict[str, str]:
    """samconfig's parameter_overrides (`Key=Value Key2="a b"`, or a list of those)."""
    items = shlex.split(value) if isinstance(value, str) else list(value)
    overrides = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise PublishError(f"parameter override {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


def resolve_target(options: PublishOptions, config: Mapping[str, Any]) -> Target:
    """Region, account and bucket, checking the credentials on the way."""
    session = boto3.Session()
    region = options.region or config.get("region") or session.region_name
    if not region:
        raise PublishError(
            "no AWS region: pass --region, set region in samconfig.toml or set AWS_REGION"
        )
    try:
        identity = session.client("sts", region_name=region).get_caller_identity()
    except NoCredentialsError as error:
        raise PublishError(
            "no AWS credentials: sign in (aws sso login, or set AWS_PROFILE / "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and try again"
        ) from error
    except NoRegionError as error:
        raise PublishError(f"region {region!r} is not known to this AWS SDK") from error
    except ClientError as error:
        raise PublishError(
            f"AWS refused the credentials ({_reason(error)}): refresh them and try again"
        ) from error
    except BotoCoreError as error:
        raise PublishError(f"cannot reach AWS STS in {region}: {error}") from error
    account_id = str(identity["Account"])
    bucket = options.bucket or f"valohai-hybrid-artifacts-{account_id}-{region}"
    if not _BUCKET.match(bucket):
        raise PublishError(f"artifacts bucket name {bucket!r} is not a valid S3 bucket name")
    partition = session.get_partition_for_region(region)
    return Target(session, region, account_id, partition, bucket)


def _reason(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")


def _check_list(values: Sequence[str], pattern: re.Pattern[str], what: str) -> str:
    if len(values) > TEMPLATE_SLOTS:
        raise PublishError(f"at most {TEMPLATE_SLOTS} {what}s, got {len(values)}")
    for value in values:
        if not pattern.match(value):
            raise PublishError(f"{value!r} is not a valid {what}")
    return ",".join(values)
