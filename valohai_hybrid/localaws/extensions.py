"""Apply every extension of the local AWS to moto, in one place."""

from __future__ import annotations

from .cloudformation.install import install as install_cloudformation


def install() -> None:
    install_cloudformation()
