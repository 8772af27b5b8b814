"""What the test suites share, imported absolutely (`from tests.support.platform import ...`):
`common` (waiting, ports, events, Workers parameters), `platform`, `products`, `doctor` and
`reliability` (their suites' actors and checks), `cli` (running the console command), `cfn`
(reading the product templates)."""
