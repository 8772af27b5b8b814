"""Maintainer tooling for Valohai Hybrid on AWS: packaging, publishing, the local AWS and doctor."""

__version__ = "0.1.0"
