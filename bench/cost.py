"""What one Valohai Hybrid setup costs per month at AWS list prices, by component, next to
what the original templates' setup costs.

The facts that set the price are read from the templates (the queue machine's default type,
its disk, detailed monitoring, Elastic IPs, secrets, the VPC flow log), so the figures follow
the product. Prices are AWS's on-demand list prices for eu-west-1 (Ireland) in USD, recorded
here by hand (no price API is called: nothing here needs an AWS account); check them against
the AWS Pricing Calculator before quoting them. What depends on the customer's work (the
workers Valohai starts, the data in the bucket, data transfer) is left out: both setups pay
it alike.

    python -m bench.cost            # bench/results/cost.json, and the table on stdout
    python -m bench.cost --readme   # also rewrite the table in README.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from typing import Any

from valohai_hybrid.checkout import CFN, README, ROOT
from valohai_hybrid.templates import load_template as load

RESULTS = ROOT / "bench" / "results" / "cost.json"
REGION = "eu-west-1 (Ireland)"
PRICES_AS_OF = "2025 (AWS price pages, recorded by hand)"
HOURS_PER_MONTH = 730
#: USD list prices in eu-west-1.
PRICES = {
    "ec2 t3.medium per hour": 0.0456,
    "ebs gp3 per GB-month": 0.088,
    "ebs gp2 per GB-month": 0.11,
    "public IPv4 address per hour": 0.005,
    "cloudwatch metric per month": 0.30,
    "secret per month": 0.40,
    "cloudwatch logs ingestion per GB": 0.57,
    "cloudwatch logs storage per GB-month": 0.03,
}
#: Metrics of an instance with detailed monitoring (AWS's pricing example counts seven).
DETAILED_MONITORING_METRICS = 7
#: Rejected flows a public queue machine and its VPC log in a month (internet background
#: scanning; an assumption, not a measurement): ingested once, stored for the retention.
FLOW_LOG_GB_PER_MONTH = 0.5
#: The original templates' queue machine: t3.medium, the Ubuntu AMI's default root disk
#: (8 GB gp2), basic monitoring, one Elastic IP, one secret, no flow log.
ORIGINAL = {"instance": "t3.medium", "disk_gb": 8, "disk_type": "gp2", "secrets": 1}
_BLOCK = re.compile(
    r"(<!-- BEGIN COST TABLE \(bench/cost\.py\) -->\n)(.*?)(<!-- END COST TABLE -->)", re.DOTALL
)


@dataclass(frozen=True)
class Line:
    component: str
    ours: float
    original: float
    basis: str


def _resources(*names: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        found.update(load(CFN / name).get("Resources", {}))
    return found


def model() -> list[Line]:
    """The monthly cost of one setup with the templates' defaults, component by component."""
    main = load(CFN / "main.yml")
    resources = _resources("main.yml", "worker-queue.yml", "network.yml")
    instance = main["Parameters"]["QueueInstanceType"]["Default"]
    hourly = PRICES.get(f"ec2 {instance} per hour")
    if hourly is None:
        raise SystemExit(f"bench/cost.py has no price for {instance}: add it to PRICES")
    queue = resources["QueueInstance"]["Properties"]
    (disk,) = [m["Ebs"] for m in queue["BlockDeviceMappings"]]
    original_disk = PRICES[f"ebs {ORIGINAL['disk_type']} per GB-month"] * ORIGINAL["disk_gb"]
    monitoring = DETAILED_MONITORING_METRICS * PRICES["cloudwatch metric per month"]
    ips = sum(r["Type"] == "AWS::EC2::EIP" for r in resources.values())
    secrets = sum(
        r["Type"] in ("AWS::SecretsManager::Secret", "Custom::ValohaiRedisSecret")
        for r in resources.values()
    )
    assert "FlowLog" in resources, "the new VPC has no flow log any more: drop its line"
    traffic = main["Parameters"]["FlowLogTrafficType"]["Default"]
    retention_days = int(main["Parameters"]["FlowLogRetentionInDays"]["Default"])
    stored_gb = FLOW_LOG_GB_PER_MONTH * retention_days / 30
    flow_cost = (
        FLOW_LOG_GB_PER_MONTH * PRICES["cloudwatch logs ingestion per GB"]
        + stored_gb * PRICES["cloudwatch logs storage per GB-month"]
    )
    ip_month = PRICES["public IPv4 address per hour"] * HOURS_PER_MONTH
    secret = PRICES["secret per month"]
    return [
        Line(
            f"Queue machine ({instance}, on demand, Linux)",
            hourly * HOURS_PER_MONTH,
            hourly * HOURS_PER_MONTH,
            f"${hourly:.4f}/h x {HOURS_PER_MONTH} h",
        ),
        Line(
            f"Queue disk ({disk['VolumeSize']} GB {disk['VolumeType']}, encrypted; "
            f"originally {ORIGINAL['disk_gb']} GB {ORIGINAL['disk_type']})",
            PRICES[f"ebs {disk['VolumeType']} per GB-month"] * disk["VolumeSize"],
            original_disk,
            "per GB-month; gp3's baseline 3,000 IOPS and 125 MB/s are included",
        ),
        Line(
            f"Elastic IP ({ips} public IPv4 address)",
            ips * ip_month,
            ip_month,
            f"${PRICES['public IPv4 address per hour']:.3f}/h, attached or not",
        ),
        Line(
            "Detailed monitoring of the queue machine (1-minute metrics)",
            monitoring if queue.get("Monitoring") else 0.0,
            0.0,
            f"about {DETAILED_MONITORING_METRICS} metrics x "
            f"${PRICES['cloudwatch metric per month']:.2f}",
        ),
        Line(
            f"Secrets Manager ({secrets} secrets: Redis password, setup token; originally 1)",
            secrets * secret,
            ORIGINAL["secrets"] * secret,
            f"${secret:.2f} per secret-month",
        ),
        Line(
            f"VPC flow log ({traffic} flows to CloudWatch Logs, kept {retention_days} days)",
            flow_cost,
            0.0,
            f"assumes {FLOW_LOG_GB_PER_MONTH} GB of records a month, stored uncompressed",
        ),
        Line(
            "Platform stack (per account and region, shared by every setup)",
            0.0,
            0.0,
            "functions run at launches only; queues, logs, Service Catalog: cents",
        ),
    ]


def table(lines: list[Line]) -> str:
    ours, original = sum(x.ours for x in lines), sum(x.original for x in lines)
    rows = [
        f"Per setup and month, USD, {REGION} list prices of {PRICES_AS_OF}; "
        "workers, data and transfer excluded.",
        "",
        "| Component | This product | Original templates | Basis |",
        "|---|--:|--:|---|",
        *(f"| {x.component} | {x.ours:.2f} | {x.original:.2f} | {x.basis} |" for x in lines),
        f"| **Total** | **{ours:.2f}** | **{original:.2f}** | "
        f"{ours - original:+.2f} ({(ours / original - 1) * 100:+.0f} %) |",
    ]
    return "\n".join(rows) + "\n"


def render_readme(text: str, lines: list[Line]) -> str:
    if not _BLOCK.search(text):
        raise SystemExit("README.md has no '<!-- BEGIN COST TABLE (bench/cost.py) -->' block")
    return _BLOCK.sub(lambda m: m.group(1) + table(lines) + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's table")
    args = parser.parse_args(argv)
    lines = model()
    summary = {
        "region": REGION,
        "prices_as_of": PRICES_AS_OF,
        "prices_usd": PRICES,
        "assumptions": {
            "hours_per_month": HOURS_PER_MONTH,
            "flow_log_gb_per_month": FLOW_LOG_GB_PER_MONTH,
            "detailed_monitoring_metrics": DETAILED_MONITORING_METRICS,
            "original": ORIGINAL,
        },
        "components": [asdict(x) for x in lines],
        "total_usd": {
            "ours": round(sum(x.ours for x in lines), 2),
            "original": round(sum(x.original for x in lines), 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(lines), end="")
    if args.readme:
        README.write_text(render_readme(README.read_text(), lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
