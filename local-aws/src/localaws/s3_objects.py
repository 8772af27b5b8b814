"""Tags of an object in another account's bucket, as S3 returns them.

moto keeps an object's tags in the tagger of the account whose backend stored the object, and
answers GetObjectTagging from the caller's: a principal reading another account's object (as
that bucket's policy allows) gets an empty tag set where S3 returns the object's tags. Here
the tags are read from the backend of the account that stored the object.
"""

from __future__ import annotations

from typing import Any

from moto.s3.models import FakeKey, S3Backend, s3_backends


def _get_object_tagging(self: S3Backend, key: FakeKey) -> Any:
    return s3_backends[key.account_id][self.partition].tagger.list_tags_for_resource(key.arn)


def install() -> None:
    """Idempotent: replace moto's GetObjectTagging lookup."""
    S3Backend.get_object_tagging = _get_object_tagging  # type: ignore[method-assign]
