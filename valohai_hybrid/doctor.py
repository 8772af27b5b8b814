"""`valohai-hybrid doctor`: check a launched Workers setup and say how to fix what is wrong.

Each check reads the setup through the same APIs an operator would use (CloudFormation,
EC2, Secrets Manager, IAM) or talks to the queue machine as Valohai and the workers do
(DNS, TLS on 63790, Redis AUTH + PING). Checks never print secret values.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

REDIS_PORT = 63790
CERTIFICATE_MIN_DAYS = 14
#: The platform stack's durable path for notifications (template.yaml names them).
REDELIVERY_QUEUE = "valohai-hybrid-redelivery.fifo"
REDELIVERY_DEAD_LETTERS = "valohai-hybrid-redelivery-dlq.fifo"
HEALTHY_STACK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}

Resolver = Callable[[str], set[str]]


@dataclass
class Check:
    """One line of the checklist."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Setup:
    """What the checks need to know about one launched Workers stack."""

    stack_name: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise LookupError(f"the stack has no output {key}: is it a Valohai Workers stack?")
        return self.outputs[key]


@dataclass
class Options:
    resolver: Resolver = field(default_factory=lambda: system_resolver)
    # host -> (host, port) to connect to instead (like curl's --connect-to), for a queue
    # machine reached through a tunnel, or before its DNS record exists.
    connect_to: dict[str, tuple[str, int]] = field(default_factory=dict)
    ca_bundle: Path | None = None
    timeout: float = 5.0
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


class DoctorError(Exception):
    """The setup cannot be found or read; the message says what to do."""


def find_setup(clients: Callable[[str], Any], name: str) -> Setup:
    """A provisioned product by name or id (pp-...), else a stack by name or id."""
    from .catalog import Catalog, NothingChanged

    try:
        stack_id = Catalog(clients).describe(name).stack_id or name
    except NothingChanged:
        stack_id = name  # not launched from Service Catalog: a stack of its own
    try:
        stack = clients("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]
    except ClientError as error:
        if "does not exist" not in str(error):
            raise
        raise DoctorError(
            f"no stack or provisioned product named {name!r} in this account and region "
            "(check --region and your credentials)"
        ) from error
    return Setup(
        stack_name=stack["StackName"],
        status=stack["StackStatus"],
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
    )


def diagnose(clients: Callable[[str], Any], setup: Setup, options: Options) -> list[Check]:
    """Run every check; one failing does not stop the others."""
    checks = [_stack(setup)]
    password: list[str] = []
    # The Redis check sends the password only after the TLS check proved the certificate names
    # QueueAddress: anyone else at the address must not receive it.
    verified: list[bool] = []
    steps: list[Callable[[], Check]] = [
        lambda: _elastic_ip(clients, setup),
        lambda: _security_groups(clients, setup),
        lambda: _secret(clients, setup, password),
        lambda: _dns(setup, options),
        lambda: _tls(setup, options, verified),
        lambda: _redis(setup, options, password, verified),
        lambda: _notification(clients, setup),
    ]
    for step in steps:
        try:
            checks.append(step())
        except LookupError as exc:
            checks.append(
                Check("setup outputs", False, str(exc), "update the product to a current release")
            )
        except ClientError as exc:
            checks.append(
                Check(
                    "a check could not read the setup",
                    False,
                    str(exc),
                    "run doctor as an identity that may read the setup's EC2, IAM, Secrets "
                    "Manager and SQS resources (ReadOnlyAccess suffices, plus "
                    "secretsmanager:GetSecretValue on the Redis secret)",
                )
            )
    return checks


def _stack(setup: Setup) -> Check:
    ok = setup.status in HEALTHY_STACK
    return Check(
        "stack is healthy",
        ok,
        f"{setup.stack_name} is {setup.status}",
        "" if ok else "read the stack's events for the failed resource; fix it and update again",
    )


def _elastic_ip(clients: Callable[[str], Any], setup: Setup) -> Check:
    ip, instance = setup.output("QueuePublicIp"), setup.output("QueueInstanceId")
    addresses = clients("ec2").describe_addresses(Filters=[{"Name": "public-ip", "Values": [ip]}])[
        "Addresses"
    ]
    attached = addresses[0].get("InstanceId") if addresses else None
    ok = attached == instance
    detail = f"{ip} is attached to {attached or 'nothing'}; the queue machine is {instance}"
    fix = (
        ""
        if ok
        else "update the stack (it re-creates the association), or associate the address with "
        f"aws ec2 associate-address --public-ip {ip} --instance-id {instance}"
    )
    return Check("Elastic IP attached to the queue machine", ok, detail, fix)


def _security_groups(clients: Callable[[str], Any], setup: Setup) -> Check:
    ec2 = clients("ec2")
    queue_id, workers_id = (
        setup.output("QueueSecurityGroupId"),
        setup.output("WorkerSecurityGroupId"),
    )
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(GroupIds=[queue_id, workers_id])["SecurityGroups"]
    }
    found = _ingress(groups[queue_id])
    wanted = {
        ("tcp", 80, "0.0.0.0/0"),
        ("tcp", REDIS_PORT, setup.parameters.get("ValohaiEgressCidr", "34.248.245.191/32")),
        ("tcp", REDIS_PORT, workers_id),
    }
    ssh = setup.parameters.get("MaintenanceSshCidr", "")
    if ssh:
        wanted.add(("tcp", 22, ssh))
    problems = [f"missing {_rule(r)}" for r in sorted(wanted - found, key=str)]
    problems += [f"unexpected {_rule(r)}" for r in sorted(found - wanted, key=str)]
    problems += [
        f"unexpected {_rule(r)} on the workers' group" for r in _ingress(groups[workers_id])
    ]
    return Check(
        "security group rules as intended",
        not problems,
        "; ".join(problems) or f"{len(found)} queue rules, no inbound rule for workers",
        ""
        if not problems
        else "update the stack to restore the rules it manages; remove rules added by hand",
    )


def _ingress(group: dict[str, Any]) -> set[tuple[str, int, str]]:
    rules = set()
    for permission in group.get("IpPermissions", []):
        protocol, port = permission.get("IpProtocol"), permission.get("FromPort", -1)
        for source in permission.get("IpRanges", []):
            rules.add((protocol, port, source["CidrIp"]))
        for source in permission.get("UserIdGroupPairs", []):
            rules.add((protocol, port, source["GroupId"]))
    return rules


def _rule(rule: tuple[str, int, str]) -> str:
    return f"{rule[0]}/{rule[1]} from {rule[2]}"


def _secret(clients: Callable[[str], Any], setup: Setup, password: list[str]) -> Check:
    secrets = clients("secretsmanager")
    arn = setup.output("RedisSecretArn")
    try:
        described = secrets.describe_secret(SecretId=arn)
    except ClientError as error:
        return Check(
            "Redis secret exists, tagged valohai=1, readable by the queue role",
            False,
            f"{arn} cannot be read ({error.response.get('Error', {}).get('Code')})",
            "update the stack: its ValohaiRedisSecret resource creates the secret again",
        )
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    problems = []
    if described.get("DeletedDate"):
        problems.append("the secret is scheduled for deletion")
    if tags.get("valohai") != "1":
        problems.append("the secret lacks the tag valohai=1")
    role = setup.output("QueueRoleArn").rsplit("/", 1)[1]
    if not _role_allows(clients("iam"), role, "secretsmanager:GetSecretValue", arn, tags):
        problems.append(f"the role {role} may not read it")
    if not problems:
        password.append(secrets.get_secret_value(SecretId=arn)["SecretString"])
    return Check(
        "Redis secret exists, tagged valohai=1, readable by the queue role",
        not problems,
        "; ".join(problems) or f"{described['Name']}",
        "" if not problems else "update the IAM product and the Workers product to restore them",
    )


def _role_allows(iam: Any, role: str, action: str, resource: str, tags: dict[str, str]) -> bool:
    """Does an Allow statement of the role's policies grant `action` on the tagged resource?"""
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )
        documents.append(version["PolicyVersion"]["Document"])
    return any(
        _statement_allows(statement, action, resource, tags)
        for document in documents
        for statement in _statements(document)
    )


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _statement_allows(
    statement: dict[str, Any], action: str, resource: str, tags: dict[str, str]
) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement.get("Action"))):
        return False
    if not any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement.get("Resource"))):
        return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        if operator != "StringEquals":
            return False  # an operator we do not evaluate: do not claim access
        for key, values in conditions.items():
            if not key.startswith("aws:ResourceTag/"):
                return False
            if tags.get(key.split("/", 1)[1]) not in _listed(values):
                return False
    return True


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _dns(setup: Setup, options: Options) -> Check:
    address, ip = setup.output("QueueAddress"), setup.output("QueuePublicIp")
    try:
        answers = options.resolver(address)
    except OSError as exc:
        answers, error = set(), str(exc)
    else:
        error = ""
    ok = ip in answers
    return Check(
        "QueueAddress resolves to the Elastic IP",
        ok,
        f"{address} -> {', '.join(sorted(answers)) or error or 'no address'}; expected {ip}",
        ""
        if ok
        else "Valohai creates this record after the setup registers it; if it is still missing "
        "an hour after the launch, send Valohai the stack's QueueAddress and QueuePublicIp",
    )


def _target(setup: Setup, options: Options) -> tuple[str, int]:
    address = setup.output("QueueAddress")
    return options.connect_to.get(address, (setup.output("QueuePublicIp"), REDIS_PORT))


def _tls_context(options: Options) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if options.ca_bundle:
        context.load_verify_locations(cafile=str(options.ca_bundle))
    return context


def _tls(setup: Setup, options: Options, verified: list[bool]) -> Check:
    address = setup.output("QueueAddress")
    host, port = _target(setup, options)
    name = f"port {REDIS_PORT} answers TLS with a valid certificate for QueueAddress"
    try:
        with (
            socket.create_connection((host, port), timeout=options.timeout) as raw,
            _tls_context(options).wrap_socket(raw, server_hostname=address) as tls,
        ):
            certificate = tls.getpeercert() or {}
        verified.append(True)
    except ssl.SSLCertVerificationError as exc:
        return Check(name, False, f"{host}:{port}: {exc.verify_message}", _CERT_FIX)
    except OSError as exc:
        return Check(name, False, f"{host}:{port}: {exc}", _PORT_FIX)
    expires = dt.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(str(certificate["notAfter"])), dt.UTC
    )
    days = (expires - options.now()).days
    ok = days >= CERTIFICATE_MIN_DAYS
    return Check(
        name,
        ok,
        f"valid for {address}, expires {expires:%Y-%m-%d} ({days} days)",
        ""
        if ok
        else "renewal is overdue: port 80 must be reachable for Let's Encrypt; "
        "restart the worker-queue service on the machine",
    )


_PORT_FIX = (
    "the queue machine may still be booting (allow 10 minutes after a launch); check its "
    "security group and that the worker-queue service runs (systemctl status on the machine)"
)
_CERT_FIX = (
    "the certificate comes from Let's Encrypt once QueueAddress resolves to the Elastic IP and "
    "port 80 is open; the service retries every 5 minutes"
)


def _redis(setup: Setup, options: Options, password: list[str], verified: list[bool]) -> Check:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    name = "Redis AUTH with the secret's password answers PING"
    if not password:
        return Check(name, False, "skipped: the password could not be read", "fix the secret first")
    if not verified:
        return Check(
            name,
            False,
            "skipped: the password goes only to a server whose certificate names QueueAddress",
            "fix the TLS check above first",
        )
    host, port = _target(setup, options)
    client = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=_verified_tls_connection_class(),
            tls=_tls_context(options),
            server_hostname=setup.output("QueueAddress"),
            host=host,
            port=port,
            password=password[0],
            socket_timeout=options.timeout,
            socket_connect_timeout=options.timeout,
            # One honest attempt: redis-py otherwise retries a refused password or connection
            # three times with backoff, which only delays the verdict.
            retry=Retry(NoBackoff(), 0),
        )
    )
    try:
        answered = client.ping()
    except redis.AuthenticationError:
        return Check(
            name,
            False,
            "Redis refused the password in the secret",
            "restart the worker-queue service so it reads the current secret value",
        )
    except (redis.RedisError, OSError) as exc:
        return Check(name, False, f"{host}:{port}: {exc}", _PORT_FIX)
    finally:
        client.close()
    return Check(name, bool(answered), "PONG" if answered else "no answer", "")


def _verified_tls_connection_class() -> type[Any]:
    import redis

    class VerifiedTlsConnection(redis.connection.Connection):
        """Redis over TLS verified for QueueAddress, not for the address dialled.

        redis-py checks a certificate against the host it connects to, which here is the
        Elastic IP (or a --connect-to target); turning that check off would hand the password
        to whoever answers. This connection checks the certificate against QueueAddress itself,
        on the very socket AUTH is sent over.
        """

        def __init__(self, *, tls: ssl.SSLContext, server_hostname: str, **kwargs: Any) -> None:
            self._tls = tls
            self._server_hostname = server_hostname
            super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # redis-py is untyped here

        def _connect(self) -> socket.socket:
            raw = super()._connect()  # type: ignore[no-untyped-call]
            try:
                return self._tls.wrap_socket(raw, server_hostname=self._server_hostname)
            except OSError:
                raw.close()
                raise

    return VerifiedTlsConnection


def _notification(clients: Callable[[str], Any], setup: Setup) -> Check:
    """The hand-off of the last stack operation; one queued then is fine once the platform's
    redelivery queue has emptied (queues hold no per-setup view, so any waiting event counts)."""
    name = "the last notification reached Valohai"
    delivery = setup.output("ValohaiNotificationDelivery")
    if delivery == "delivered":
        return Check(name, True, "last hand-off: delivered")
    if delivery == "unchanged":
        return Check(name, True, "last hand-off: unchanged by the last update (nothing to send)")
    if delivery == "rejected":
        return Check(
            name,
            False,
            "last hand-off: rejected by Valohai (a final answer: it is not sent again)",
            "check ValohaiApiUrl and the setup token with Valohai, then update the stack with "
            "a hand-off change to send it again",
        )
    if delivery != "queued":
        return Check(
            name,
            False,
            f"last hand-off: {delivery} (it could not even be queued)",
            "update the stack with any change to send it again; check that the platform stack "
            "is deployed in this region",
        )
    sqs = clients("sqs")
    try:
        waiting = _queued(sqs, REDELIVERY_QUEUE)
        given_up = _queued(sqs, REDELIVERY_DEAD_LETTERS)
    except ClientError as error:
        return Check(
            name,
            False,
            f"last hand-off: queued; the redelivery queue cannot be read ({error})",
            "publish the platform stack in this region, or let doctor read "
            f"{REDELIVERY_QUEUE} (sqs:GetQueueUrl, sqs:GetQueueAttributes)",
        )
    if given_up:
        return Check(
            name,
            False,
            f"last hand-off: queued; {given_up} event(s) were given up on after a day of "
            f"attempts and wait in {REDELIVERY_DEAD_LETTERS}",
            "check ValohaiApiUrl and the setup token with Valohai, then move the events back "
            f"to {REDELIVERY_QUEUE} (SQS dead-letter queue redrive)",
        )
    if waiting:
        return Check(
            name,
            False,
            f"last hand-off: queued; {waiting} event(s) wait in {REDELIVERY_QUEUE}",
            "they are sent again automatically; if Valohai stays unreachable, check "
            "ValohaiApiUrl and the setup token",
        )
    return Check(name, True, "last hand-off: queued, and redelivered since (nothing waits)")


def _queued(sqs: Any, queue: str) -> int:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def system_resolver(host: str) -> set[str]:
    return {str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET)}


def report(checks: Iterable[Check]) -> tuple[str, bool]:
    """The checklist as text, and whether every check passed."""
    lines, healthy = [], True
    for check in checks:
        healthy &= check.ok
        lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"      fix: {check.fix}")
    lines.append("verdict: healthy" if healthy else "verdict: needs attention")
    return "\n".join(lines), healthy
