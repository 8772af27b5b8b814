"""docs/valohai-event-contract.md and docs/schemas/ against what the code really does."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from valohai_cr.errors import PropertyError
from valohai_cr.events import EventType, build, idempotency_key, request_headers
from valohai_cr.notification import parse_handoff

from tests.support.functions import (
    HANDOFF,
    STACK_ID,
    TEMPLATE,
    TOKEN,
    FakeContext,
    Inbox,
    Invoker,
    create_token_secret,
    stack_status,
)
from valohai_hybrid.checkout import DOCS
from valohai_hybrid.local.standin import StandIn, verify
from valohai_hybrid.local.standin.receiver import HeaderMap

CONTRACT = (DOCS / "valohai-event-contract.md").read_text()


def schema_of(event_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (DOCS / "schemas" / f"{event_type}.schema.json").read_text()
    )
    return schema


def validator(event_type: str) -> Draft202012Validator:
    return Draft202012Validator(
        schema_of(event_type), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", CONTRACT, flags=re.DOTALL)


def test_there_is_one_valid_schema_per_event_type() -> None:
    files = sorted(p.name for p in (DOCS / "schemas").glob("*.schema.json"))

    assert files == sorted(f"{t.value}.schema.json" for t in EventType)
    for event_type in EventType:
        Draft202012Validator.check_schema(schema_of(event_type))
        assert schema_of(event_type)["properties"]["type"] == {"const": event_type.value}


def test_every_event_the_functions_send_matches_its_schema(
    load_handler: Any, inbox: Inbox, standin: StandIn, token_secret_arn: str, redelivery_queue: str
) -> None:
    notify = Invoker(load_handler("notification").handler, inbox, "Custom::ValohaiNotification")
    queue = Invoker(load_handler("queue_address").handler, inbox, "Custom::ValohaiQueueAddress")
    common = {"ValohaiApiUrl": standin.url, "SetupTokenSecretArn": token_secret_arn}
    handoff = {**common, "Handoff": HANDOFF}
    address = {**common, "QueueAddress": "acme.vqueue.net", "PublicIp": "203.0.113.10"}
    notify("Create", handoff)
    moved = {**handoff, "Handoff": {**HANDOFF, "QueuePublicIp": "203.0.113.11"}}
    notify("Update", moved, physical_id="n", old_properties=handoff)
    notify("Delete", handoff, physical_id="n")
    queue("Create", address)
    queue("Delete", address, physical_id="acme.vqueue.net")
    stack_id = boto3.client("cloudformation").create_stack(
        StackName="forwarded-setup",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "ValohaiApiUrl", "ParameterValue": standin.url}],
    )["StackId"]
    create_token_secret(stack_id, TOKEN)
    load_handler("stack_status").handler(
        stack_status(stack_id, "UPDATE_ROLLBACK_COMPLETE", "x"), FakeContext(10)
    )

    events = standin.receiver.events()
    assert {e.type for e in events} == {t.value for t in EventType}
    for event in events:
        errors = [e.message for e in validator(event.type).iter_errors(event.body)]
        assert errors == [], event.type


@given(
    handoff=st.fixed_dictionaries(
        {key: st.one_of(st.just(value), st.text(max_size=30)) for key, value in HANDOFF.items()}
    )
)
def test_whatever_hand_off_the_function_accepts_the_schema_accepts(handoff: dict[str, str]) -> None:
    try:
        parsed = parse_handoff(handoff)
    except PropertyError:
        return
    event = build(
        EventType.SETUP_CREATED,
        "0" * 64,
        stack_id=STACK_ID,
        data={"handoff": parsed},
        occurred_at=datetime.now(UTC),
    )

    assert list(validator("setup.created").iter_errors(json.loads(event.body))) == []


def test_the_documented_example_is_valid_and_its_id_follows_the_documented_recipe() -> None:
    [example] = [json.loads(block) for block in code_blocks("json")]

    assert list(validator(example["type"]).iter_errors(example)) == []
    parts = [
        example["type"],
        example["stack"]["id"],
        "ValohaiNotification",
        "5ad4c3d2-7f1e-4b6a-9c0d-1e2f3a4b5c6d",
    ]
    assert example["id"] == hashlib.sha256("\n".join(parts).encode()).hexdigest()
    assert example["data"]["handoff"] == parse_handoff(HANDOFF)


def test_the_documented_verification_code_is_the_code_the_stand_in_runs() -> None:
    [documented] = [block for block in code_blocks("python") if "def verify_request" in block]
    source = inspect.getsource(verify).split("from __future__ import annotations\n\n", 1)[1]

    assert documented == source.rstrip("\n")


tokens = st.from_regex(r"[A-Za-z0-9._~-]{32,64}", fullmatch=True)


@given(
    token=tokens,
    other=tokens,
    payload=st.binary(max_size=200),
    now=st.integers(1_600_000_000, 2_000_000_000),
    skew=st.integers(-300, 300),
)
def test_what_the_functions_sign_the_documented_recipe_accepts_and_nothing_else(
    token: str, other: str, payload: bytes, now: int, skew: int
) -> None:
    namespace: dict[str, Any] = {}
    [documented] = [block for block in code_blocks("python") if "def verify_request" in block]
    exec(documented, namespace)  # the doc's code, as an outsider would paste it
    event = build(
        EventType.SETUP_UPDATED,
        "1" * 64,
        stack_id=STACK_ID,
        data={"p": payload.hex()},
        occurred_at=datetime.now(UTC),
    )
    headers = HeaderMap(request_headers(event, token, now).items())
    tokens_by_key = {namespace["key_id"](token): token}

    assert (
        namespace["verify_request"](headers, event.body, tokens_by_key, now=now + skew)
        == headers["X-Valohai-Key-Id"]
    )
    with pytest.raises(namespace["SignatureError"]):
        namespace["verify_request"](headers, event.body + b" ", tokens_by_key, now=now)
    with pytest.raises(namespace["SignatureError"]):
        namespace["verify_request"](
            headers, event.body, tokens_by_key, now=now + 301 * (1 if skew >= 0 else -1)
        )
    if other != token:
        with pytest.raises(namespace["SignatureError"]):
            namespace["verify_request"](
                headers, event.body, {namespace["key_id"](token): other}, now=now
            )


def test_the_documented_idempotency_recipe_is_what_the_code_computes() -> None:
    assert 'sha256("\\n".join([type, StackId, LogicalResourceId,\n  RequestId]))' in CONTRACT
    assert (
        idempotency_key(EventType.SETUP_CREATED, STACK_ID, "L", "R")
        == hashlib.sha256(f"setup.created\n{STACK_ID}\nL\nR".encode()).hexdigest()
    )
    assert (
        idempotency_key(EventType.STACK_STATUS_CHANGED, "evt")
        == hashlib.sha256(b"stack.status_changed\nevt").hexdigest()
    )
