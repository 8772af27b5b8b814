"""Generated parts of the README: product parameter tables and the architecture picture.

Both come from the templates themselves, so they cannot drift: `valohai-hybrid docs --check`
(run by the tests) fails when README.md is not what the templates say, and
`valohai-hybrid docs --write` rewrites the generated blocks in place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from valohai_hybrid.checkout import CFN
from valohai_hybrid.products import PRODUCTS
from valohai_hybrid.templates import load_template

_BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED -->)",
    re.DOTALL,
)
# Products as Service Catalog lists them, with the template that is each one's root.


def parameters_table(path: Path) -> str:
    """A markdown table of the template's parameters, in the console's groups and order."""
    template = load_template(path)
    declared: dict[str, Any] = template.get("Parameters") or {}
    interface = (template.get("Metadata") or {}).get("AWS::CloudFormation::Interface", {})
    labels = interface.get("ParameterLabels", {})
    rows = ["| Group | Parameter | Type | Default | What it is |", "|---|---|---|---|---|"]
    for group in interface.get("ParameterGroups", []):
        for name in group["Parameters"]:
            spec = declared[name]
            label = labels.get(name, {}).get("default", name)
            default = "(required)" if "Default" not in spec else _code(spec["Default"])
            if spec.get("NoEcho"):
                default += " (hidden)"
            allowed = spec.get("AllowedValues")
            what = _cell(spec.get("Description", ""))
            if allowed:
                what += " Allowed: " + ", ".join(f"`{_cell(v)}`" for v in allowed) + "."
            rows.append(
                f"| {_cell(group['Label']['default'])} | **{_cell(label)}** (`{name}`) | "
                f"{spec.get('Type', 'String')} | {default} | {what} |"
            )
    return "\n".join(rows) + "\n"


def architecture() -> str:
    """A Mermaid picture: products, their nested stacks, the resources, and who they call."""
    lines = ["```mermaid", "flowchart LR"]
    lines.append('  admin(["Customer admin"]) -->|launches| catalog["Service Catalog portfolio"]')
    calls: list[str] = []
    for product, title, root in ((p.key, p.title, p.root_template) for p in PRODUCTS):
        lines.append(f'  catalog --> {product}_product["{title} product"]')
        lines.append(f"  {product}_product --> {_node(root)}")
        _stack(root, lines, calls, seen=set())
    lines += [
        '  functions["Custom-resource functions<br/>(platform stack)"]',
        '  valohai(["Valohai API"])',
        "  functions -->|signed events| valohai",
        *sorted(set(calls)),
        "```",
    ]
    return "\n".join(lines) + "\n"


def _stack(name: str, lines: list[str], calls: list[str], seen: set[str]) -> None:
    if name in seen:
        return
    seen.add(name)
    template = load_template(CFN / name)
    lines.append(f'  subgraph {_node(name)}["{name}"]')
    children = []
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::CloudFormation::Stack":
            children.append(resource["Properties"]["TemplateURL"])
            continue
        short = kind.split("::", 1)[-1].replace("::", " ")
        node = f"{_node(name)}_{logical_id}"
        lines.append(f'    {node}["{logical_id}<br/>{short}"]')
        if kind.startswith("Custom::"):
            calls.append(f"  {node} -.->|invokes| functions")
    lines.append("  end")
    for child in dict.fromkeys(children):
        lines.append(f"  {_node(name)} -->|nests| {_node(child)}")
        _stack(child, lines, calls, seen)


def _node(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name.removesuffix(".yml"))


def _code(value: Any) -> str:
    text = _cell(value)
    return f"`{text}`" if text else "(empty)"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def generated_blocks() -> dict[str, str]:
    blocks = {"architecture": architecture()}
    for product, root in ((p.key, p.root_template) for p in PRODUCTS):
        blocks[f"parameters-{product}"] = parameters_table(CFN / root)
    return blocks


def render(readme: str) -> str:
    """README text with every generated block replaced by what the templates say now."""
    blocks = generated_blocks()
    missing = set(blocks) - {m.group("name") for m in _BLOCK.finditer(readme)}
    if missing:
        raise ValueError(f"README.md lacks the generated blocks {sorted(missing)}")
    return _BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")] + m.group(4), readme)
