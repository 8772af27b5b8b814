"""The local AWS's IAM engine: start time and per-decision latency (cold, warm, cached, batched),
and what enforcement adds to a request an IAM user signs, on a running local AWS.

    python -m bench iam_engine        (part of `make bench`)

Writes bench/results/iam_engine.json (milliseconds); `bench.iam_enforcement` measures what
enforcement costs whole launches.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localaws.harness import isolate_environment, running_local_aws, unique
from localaws.iam.engine import Policy, PolicyEngine, Request

from bench.machine import context, say, write

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/bench"
POLICY = Policy(
    f"arn:aws:iam::{ACCOUNT}:policy/Bench",
    json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:*", "sqs:*"], "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/team": "ml"}},
                },
                {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
            ],
        }
    ),
)
ROUNDS = 200


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _object(n: int) -> Request:
    return Request(USER, "s3:GetObject", f"arn:aws:s3:::bench/{n}", ACCOUNT, (POLICY,))


def _median_ms(calls: list[Callable[[], object]]) -> float:
    return _ms(statistics.median(_timed(call) for call in calls))


def server_figures() -> dict[str, Any]:
    """Median latency of S3 GetObject signed by an IAM user, enforcement off and on: the same
    object again (cached decision) and a new object each time (a decision per request)."""
    isolate_environment()
    with tempfile.TemporaryDirectory() as state, running_local_aws(Path(state)) as aws:
        admin = aws.client("s3")
        bucket = unique("bench")
        admin.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws.region}
        )
        for n in range(ROUNDS * 3):
            admin.put_object(Bucket=bucket, Key=f"k{n}", Body=b"x")
        arn, session = aws.iam_user("bench")
        aws.client("iam").put_user_policy(
            UserName=arn.rsplit("/", 1)[1], PolicyName="read", PolicyDocument=POLICY.document
        )
        s3 = session.client("s3", endpoint_url=aws.endpoint_url)  # type: ignore[call-overload]

        def get(n: int) -> Callable[[], object]:
            return lambda: s3.get_object(Bucket=bucket, Key=f"k{n}")

        figures: dict[str, Any] = {}
        off_same = _median_ms([get(0)] * ROUNDS)
        off_new = _median_ms([get(n) for n in range(ROUNDS)])
        aws.control("iam-enforcement", {"enforce": True})
        first = _ms(_timed(get(0)))  # the engine starts here
        figures["server_first_enforced_request_ms"] = first
        figures["server_get_object_same_key_ms"] = {
            "off": off_same,
            "on": _median_ms([get(0)] * ROUNDS),
        }
        figures["server_get_object_new_key_ms"] = {
            "off": off_new,
            "on": _median_ms([get(n) for n in range(ROUNDS, 2 * ROUNDS)]),
        }
        return figures


def main() -> int:
    started = context()
    say("iam_engine: the policy engine alone, then S3 reads signed by an IAM user")
    engine = PolicyEngine()
    try:
        start = _timed(engine._running)  # the process, up to its ready line
        first = _timed(lambda: engine.decide(_object(-1)))
        other_service = _timed(
            lambda: engine.decide(
                Request(
                    USER,
                    "sqs:SendMessage",
                    f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q",
                    ACCOUNT,
                    (POLICY,),
                )
            )
        )
        warm = [_timed(lambda n=n: engine.decide(_object(n))) for n in range(ROUNDS)]
        cached = [_timed(lambda n=n: engine.decide(_object(n))) for n in range(ROUNDS)]
        batches = [
            _timed(lambda b=b: engine.decide_all([_object(10_000 + 20 * b + i) for i in range(20)]))
            for b in range(20)
        ]
    finally:
        engine.close()
    figures = {
        "engine_start_ms": _ms(start),
        "first_decision_ms": _ms(first),
        "first_decision_of_another_service_ms": _ms(other_service),
        "uncached_decision_median_ms": _ms(statistics.median(warm)),
        "uncached_decision_p95_ms": _ms(statistics.quantiles(warm, n=20)[18]),
        "cached_decision_median_ms": _ms(statistics.median(cached)),
        "batch_of_20_uncached_median_ms": _ms(statistics.median(batches)),
        "stats": vars(engine.stats),
        **server_figures(),
    }
    write("iam_engine", figures, started)
    say(
        f"  engine start {figures['engine_start_ms']:.0f} ms, uncached decision "
        f"{figures['uncached_decision_median_ms']:.2f} ms, cached "
        f"{figures['cached_decision_median_ms']:.3f} ms, batch of 20 "
        f"{figures['batch_of_20_uncached_median_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
