"""Maintainer commands: `docs`, `package`, `publish`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valohai_hybrid import keyvalue

from .outcomes import FAILED, OK, OperationFailed

if TYPE_CHECKING:
    from valohai_hybrid.publish import PublishOptions


def _docs(args: argparse.Namespace) -> int:
    from valohai_hybrid import docgen
    from valohai_hybrid.checkout import README

    current = README.read_text()
    wanted = docgen.render(current)
    if args.write:
        README.write_text(wanted)
        print(
            "README.md: generated blocks rewritten" if wanted != current else "README.md: current"
        )
        return OK
    if wanted != current:
        print(
            "README.md is out of date with the templates: run `valohai-hybrid docs --write`",
            file=sys.stderr,
        )
        return FAILED
    print("README.md: generated blocks are current")
    return OK


# ---- package and publish --------------------------------------------------------------------


@contextmanager
def _publishing() -> Iterator[Any]:
    """The publish module (slow to import: it loads cfn-lint), its errors as OperationFailed."""
    from valohai_hybrid import publish

    try:
        yield publish
    except publish.PublishError as error:
        raise OperationFailed(str(error)) from error


def _publish_options(publish: Any, args: argparse.Namespace) -> PublishOptions:
    options: PublishOptions = publish.PublishOptions(
        project_dir=args.project_dir.resolve(),
        config_env=getattr(args, "config_env", "default"),
        version=args.version,
        bucket=args.bucket,
        region=args.region,
        principals=getattr(args, "principal", None),
        share_with=args.share_with,
        parameters=dict(getattr(args, "parameter", None) or []),
        sam=getattr(args, "sam", None),
        cfn_dir=args.cfn_dir,
        verbose=not getattr(args, "quiet", False),
    )
    return options


def _package(args: argparse.Namespace) -> int:
    with _publishing() as publish:
        release = publish.package_only(_publish_options(publish, args), args.share_with or ())
    print(f"release {release.version} in s3://{release.bucket}/{release.prefix}")
    print(f"  IAM product template      {release.iam_template_url}")
    print(f"  Workers product template  {release.workers_template_url}")
    return OK


def _publish(args: argparse.Namespace) -> int:
    with _publishing() as publish:
        publish.report(publish.publish(_publish_options(publish, args)))
    return OK


def _key_value(text: str) -> tuple[str, str]:
    pair = keyvalue.split(text)
    if pair is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return pair


def _add_release_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--version", help="release version (default: this package's version, from pyproject)"
    )
    command.add_argument(
        "--bucket", help="artifacts bucket (default: valohai-hybrid-artifacts-<account>-<region>)"
    )
    command.add_argument("--region", help="AWS region (default: samconfig's, else AWS_REGION)")
    command.add_argument(
        "--share-with",
        action="append",
        metavar="ACCOUNT",
        help="an account the portfolio is shared with: it may read the releases (repeat)",
    )
    command.add_argument(
        "--project-dir",
        type=Path,
        default=Path(),
        help="where template.yaml, samconfig.toml, cfn/ and functions/ are (default: .)",
    )
    command.add_argument(
        "--cfn-dir", type=Path, help="the product templates (default: cfn/ in the project)"
    )


def add_docs(commands: Any) -> None:
    docs = commands.add_parser(
        "docs", help="check (default) or rewrite README.md's blocks generated from the templates"
    )
    docs.add_argument("--write", action="store_true", help="rewrite the blocks in place")
    docs.set_defaults(handler=_docs)


def add_release(commands: Any) -> None:
    package = commands.add_parser(
        "package",
        help="upload the product templates as a release to the artifacts bucket (no deploy)",
    )
    _add_release_arguments(package)
    package.set_defaults(handler=_package)

    release = commands.add_parser(
        "publish",
        help="package a release and deploy the platform stack with it (sam build + sam deploy)",
        description="Package the product templates as a release, then build and deploy the "
        "platform stack (template.yaml) with the samconfig.toml environment. Uses your AWS "
        "credentials, or the local AWS when AWS_ENDPOINT_URL points at it.",
    )
    _add_release_arguments(release)
    release.add_argument(
        "--config-env", default="default", help="samconfig.toml environment (default: default)"
    )
    release.add_argument(
        "--principal",
        action="append",
        metavar="ARN",
        help="an IAM user, role or group that may launch the products (repeat; "
        "default: keep the current ones)",
    )
    release.add_argument(
        "--parameter",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="a template.yaml parameter, over samconfig's parameter_overrides (repeat)",
    )
    release.add_argument(
        "--sam", type=Path, help="aws-sam-cli to run (default: .tools/sam/bin/sam, else PATH)"
    )
    release.add_argument(
        "--quiet", action="store_true", help="show sam's output only when it fails"
    )
    release.set_defaults(handler=_publish)
