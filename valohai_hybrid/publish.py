"""Publishing the platform stack: artifacts bucket, packaged release, `sam build`, `sam deploy`.

One code path for AWS (`make publish`) and for the local AWS (the demo and the tests): only
the credentials and AWS_ENDPOINT_URL differ. Every problem a maintainer can fix is a
PublishError whose message says what to do; nothing else is caught.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from valohai_hybrid.products import WORKERS
from valohai_hybrid.templates import TemplateError, load_template

from .packaging import RELEASE_PREFIX, PackagingError, Release, package

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


# ---- the artifacts bucket -------------------------------------------------------------------


def ensure_bucket(target: Target, share_with: Sequence[str] = ()) -> None:
    """Create the artifacts bucket if needed; (re)apply its security settings every time.

    Private, encrypted, TLS only, versioned. Accounts the portfolio is shared with may read
    the releases, through their launch roles only.
    """
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=target.bucket, ExpectedBucketOwner=target.account_id)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code == "403":
            raise PublishError(
                f"bucket {target.bucket} belongs to another account or denies access: "
                "choose another with --bucket"
            ) from error
        if code not in _NOT_FOUND:
            raise PublishError(f"cannot check bucket {target.bucket}: {_reason(error)}") from error
        _create_bucket(s3, target)
    s3.put_public_access_block(
        Bucket=target.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=target.bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    s3.put_bucket_encryption(
        Bucket=target.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_versioning(Bucket=target.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=target.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    # sam deploy uploads function packages under content-hashed keys, read only
                    # while a deployment changes the code. Releases are never expired.
                    "ID": "ExpireFunctionPackages",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "sam/"},
                    "Expiration": {"Days": 90},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                },
                {
                    "ID": "AbortIncompleteUploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                },
            ]
        },
    )
    s3.put_bucket_policy(Bucket=target.bucket, Policy=json.dumps(bucket_policy(target, share_with)))


def _create_bucket(s3: Any, target: Target) -> None:
    location = (
        {}
        if target.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": target.region}}
    )
    try:
        s3.create_bucket(Bucket=target.bucket, **location)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) == "BucketAlreadyExists":
            raise PublishError(
                f"bucket name {target.bucket} is taken by another account: choose another "
                "with --bucket"
            ) from error
        raise PublishError(f"cannot create bucket {target.bucket}: {_reason(error)}") from error


def bucket_policy(target: Target, share_with: Sequence[str]) -> dict[str, Any]:
    bucket_arn = f"arn:{target.partition}:s3:::{target.bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if share_with:
        statements.append(
            {
                "Sid": "SharedAccountsLaunchRolesReadReleases",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{target.partition}:iam::{a}:root" for a in share_with]},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{RELEASE_PREFIX}/*",
                "Condition": {
                    "ArnLike": {
                        "aws:PrincipalArn": [
                            f"arn:{target.partition}:iam::{account}:role/ValohaiHybrid*Launch-"
                            f"{target.region}"
                            for account in share_with
                        ]
                    }
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def package_release(options: PublishOptions, target: Target, version: str) -> Release:
    try:
        return package(
            _cfn_dir(options),
            target.client("s3"),
            bucket=target.bucket,
            region=target.region,
            version=version,
        )
    except PackagingError as error:
        raise PublishError(str(error)) from error


def offered_releases(target: Target, current: str) -> list[str]:
    """The newest releases in the bucket, newest first, `current` among them."""
    s3 = target.client("s3")
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.bucket, Prefix=f"{RELEASE_PREFIX}/", Delimiter="/"
    )
    for page in pages:
        for prefix in page.get("CommonPrefixes", []):
            name = prefix["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            if _RELEASE.match(name):
                found.append(name)
    newest = sorted(set(found), key=_semver_key, reverse=True)[:TEMPLATE_SLOTS]
    if current not in newest:
        raise PublishError(
            f"{current} is older than the {TEMPLATE_SLOTS} newest releases in "
            f"s3://{target.bucket}/{RELEASE_PREFIX}/ ({', '.join(newest)}): the products offer "
            "only those, so it would be deleted at once; publish a newer version"
        )
    return newest


def _semver_key(version: str) -> tuple[Any, ...]:
    """Semantic version precedence: a pre-release sorts before its release."""
    match = _RELEASE.match(version)
    assert match is not None
    major, minor, patch, pre = match.groups()
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in (pre or "").split(".")
    )
    return (int(major), int(minor), int(patch), pre is None, identifiers)


# ---- sam build and sam deploy ---------------------------------------------------------------


def find_sam(options: PublishOptions) -> Path:
    candidates = [options.sam] if options.sam else [options.project_dir / SAM_IN_PROJECT]
    if not options.sam and (on_path := shutil.which("sam")):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise PublishError(
        f"aws-sam-cli not found at {candidates[0]}: run `make tools` (it installs sam in "
        ".tools/sam), or give its path with --sam"
    )


@functools.cache
def _runtime_python() -> Path | None:
    """A python3.13 that runs (a pyenv shim may not), for the functions' bytecode."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    on_path = shutil.which(RUNTIME_PYTHON)
    candidates = [
        *([Path(on_path)] if on_path else []),
        *sorted(pyenv.glob(f"versions/3.13*/bin/{RUNTIME_PYTHON}")),
    ]
    for candidate in candidates:
        check = [str(candidate), "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def _sam_environment() -> dict[str, str]:
    # sam deploy polls every 5 s by default (sam sync: 0.5 s); a stack that takes a second
    # would cost ten. Whoever set SAM_CLI_POLL_DELAY keeps theirs.
    environment = {"SAM_CLI_POLL_DELAY": "0.5", **os.environ, "SAM_CLI_TELEMETRY": "0"}
    python = _runtime_python()
    if python is not None:
        environment["PATH"] = f"{python.parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def _source_digest(options: PublishOptions, sam: Path) -> str:
    """What a build depends on: template.yaml, functions/ and the sam and Python used."""
    digest = hashlib.sha256()
    digest.update(str(sam.resolve()).encode())
    digest.update(str(_runtime_python()).encode())
    digest.update((options.project_dir / TEMPLATE).read_bytes())
    functions = options.project_dir / "functions"
    for path in sorted(functions.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".aws-sam" not in path.parts:
            digest.update(str(path.relative_to(functions)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One build at a time in a build directory (tests and a maintainer may share it)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(options: PublishOptions, sam: Path, log: Log) -> Path:
    """`sam build` into the build directory, skipped when nothing it depends on changed."""
    build_dir = options.build_dir or options.project_dir / BUILD_DIR
    stamp = build_dir / BUILD_STAMP
    with _exclusive(build_dir.parent / ".valohai-hybrid-build.lock"):
        digest = _source_digest(options, sam)
        if (build_dir / TEMPLATE).is_file() and stamp.is_file() and stamp.read_text() == digest:
            log(f"functions unchanged since the last build: reusing {build_dir}")
            return build_dir / TEMPLATE
        if _runtime_python() is None:
            log(f"no {RUNTIME_PYTHON} found: the functions ship without bytecode (slower starts)")
        stamp.unlink(missing_ok=True)
        _run_sam(
            [
                str(sam),
                "build",
                "--template-file",
                str(options.project_dir / TEMPLATE),
                "--build-dir",
                str(build_dir),
                "--config-file",
                str(options.project_dir / SAMCONFIG),
                "--config-env",
                options.config_env,
            ],
            options,
            "sam build",
        )
        stamp.write_text(digest)
    return build_dir / TEMPLATE


def deploy(
    options: PublishOptions,
    sam: Path,
    built_template: Path,
    target: Target,
    stack_name: str,
    parameters: Mapping[str, str],
) -> None:
    # Quoted, so that an empty value is still a value to sam.
    overrides = [f'{key}="{_escaped(value)}"' for key, value in parameters.items()]
    _run_sam(
        [
            str(sam),
            "deploy",
            "--template-file",
            str(built_template),
            "--config-file",
            str(options.project_dir / SAMCONFIG),
            "--config-env",
            options.config_env,
            "--stack-name",
            stack_name,
            "--region",
            target.region,
            "--s3-bucket",
            target.bucket,
            "--no-progressbar",
            "--parameter-overrides",
            *overrides,
        ],
        options,
        "sam deploy",
    )


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _run_sam(command: list[str], options: PublishOptions, what: str) -> None:
    completed = subprocess.run(
        command,
        cwd=options.project_dir,
        env=_sam_environment(),
        stdout=None if options.verbose else subprocess.PIPE,
        stderr=None if options.verbose else subprocess.STDOUT,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        tail = "" if options.verbose else "\n" + "\n".join(completed.stdout.splitlines()[-25:])
        raise PublishError(f"{what} failed (exit code {completed.returncode}){tail}")


# ---- publish --------------------------------------------------------------------------------


def _stack(target: Target, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise PublishError(f"cannot read stack {stack_name}: {_reason(error)}") from error
    return stacks[0] if stacks else None


def _previous(stack: Mapping[str, Any] | None, key: str) -> str:
    for parameter in (stack or {}).get("Parameters", []):
        if parameter["ParameterKey"] == key:
            return str(parameter.get("ParameterValue", ""))
    return ""


def deprecate_earlier_versions(target: Target, outputs: Mapping[str, str], newest: str) -> None:
    """New launches get the newest release (a hotfix of an older line does not take its place);
    the others stay available to the products launched from them."""
    servicecatalog = target.client("servicecatalog")
    for key in ("IamProductId", "WorkersProductId"):
        product_id = outputs.get(key)
        if not product_id:
            continue
        versions = servicecatalog.list_provisioning_artifacts(ProductId=product_id)
        for version in versions["ProvisioningArtifactDetails"]:
            guidance = "DEFAULT" if version["Name"] == newest else "DEPRECATED"
            if version.get("Guidance") != guidance:
                servicecatalog.update_provisioning_artifact(
                    ProductId=product_id, ProvisioningArtifactId=version["Id"], Guidance=guidance
                )


def publish(options: PublishOptions, log: Log = print) -> Published:
    """Package the release and deploy the platform stack with it; see the module docstring."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    if not (options.project_dir / TEMPLATE).is_file():
        raise PublishError(
            f"no {TEMPLATE} in {options.project_dir}: run from the repository root or give "
            "--project-dir"
        )
    config = samconfig(options)
    version = release_version(options)
    sam = find_sam(options)
    target = resolve_target(options, config)
    stack_name = str(config["stack_name"])
    stack = _stack(target, stack_name)
    principals = (
        _check_list(options.principals, _PRINCIPAL, "principal ARN")
        if options.principals is not None
        else _previous(stack, "PrincipalArns")
    )
    shares = (
        _check_list(options.share_with, _ACCOUNT, "account id")
        if options.share_with is not None
        else _previous(stack, "ShareWithAccounts")
    )
    given = {**parse_overrides(config.get("parameter_overrides", "")), **options.parameters}
    receiving = given.get("PublishPortfolio") == "false"
    log(f"publishing release {version} to {stack_name} in {target.account_id}/{target.region}")

    # The bucket also holds sam's function packages, in an account receiving a share too.
    ensure_bucket(target, [a for a in shares.split(",") if a])
    if receiving:
        # The products and their templates are the sharing account's: no release here, and the
        # launch roles read the templates from that account's bucket.
        templates_bucket = given.get("ArtifactsBucket")
        if not templates_bucket:
            raise PublishError(
                "with PublishPortfolio=false this account launches the products another "
                "account shares: give that account's artifacts bucket with "
                "--parameter ArtifactsBucket=<bucket>"
            )
        release, releases = None, [version]
    else:
        templates_bucket = target.bucket
        release = package_release(options, target, version)
        releases = offered_releases(target, version)
        log(f"release {version} is in s3://{target.bucket}/{release.prefix}")
    timings["package"] = time.monotonic() - started

    step = time.monotonic()
    built = build(options, sam, log)
    timings["build"] = time.monotonic() - step

    parameters = {
        **given,
        "ArtifactsBucket": templates_bucket,
        "Releases": ",".join(releases),
        "PrincipalArns": principals,
        "ShareWithAccounts": shares,
    }
    step = time.monotonic()
    deploy(options, sam, built, target, stack_name, parameters)
    timings["deploy"] = time.monotonic() - step

    described = _stack(target, stack_name) or {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    deprecate_earlier_versions(target, outputs, releases[0])
    timings["total"] = time.monotonic() - started
    return Published(
        stack_name=stack_name,
        region=target.region,
        account_id=target.account_id,
        bucket=target.bucket,
        release=release,
        releases=releases,
        outputs=outputs,
        timings=timings,
    )


def package_only(options: PublishOptions, share_with: Sequence[str] = ()) -> Release:
    """`valohai-hybrid package`: the bucket and the release, without deploying anything."""
    config = samconfig(options) if (options.project_dir / SAMCONFIG).is_file() else {}
    version = release_version(options)
    target = resolve_target(options, config)
    ensure_bucket(target, share_with)
    return package_release(options, target, version)


def report(published: Published, stream: Any = sys.stdout) -> None:
    """What a maintainer needs after publishing: where things are, and how long it took."""
    stack = f"  stack      {published.stack_name} ({published.account_id}, {published.region})"
    if published.release is None:
        lines = ["published what launches of a shared portfolio need in this account", stack]
    else:
        offered = ", ".join(published.releases)
        lines = [
            f"published release {published.release.version} (offered: {offered})",
            stack,
            f"  templates  s3://{published.bucket}/{published.release.prefix}",
        ]
    for key in ("PortfolioId", "IamProductId", "WorkersProductId"):
        if key in published.outputs:
            lines.append(f"  {key:<10} {published.outputs[key]}")
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in published.timings.items())
    lines.append(f"  took       {steps}")
    print("\n".join(lines), file=stream)
