"""Publishing from start to end: settings, bucket, release, build, deploy, earlier versions
deprecated; and packaging alone."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from valohai_hybrid.packaging import Release

from .bucket import ensure_bucket, offered_releases, package_release
from .options import (
    _ACCOUNT,
    _PRINCIPAL,
    SAMCONFIG,
    TEMPLATE,
    Log,
    Published,
    PublishError,
    PublishOptions,
    Target,
    _check_list,
    _reason,
    parse_overrides,
    release_version,
    resolve_target,
    samconfig,
)
from .sam import build, deploy, find_sam


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
