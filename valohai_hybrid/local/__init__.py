"""What needs the local AWS: the demo, `local-aws` and the Valohai API stand-in.

Installed with the `local` extra only (it brings the local AWS, moto-localaws, with moto and
werkzeug), so a customer's `pip install` of the console command carries no test bench. The
console command imports this package lazily, and says what to install when it is missing
(`MISSING_EXTRA`).
"""

from __future__ import annotations

#: What the console command says when a subcommand needs this package and it is not installed.
INSTALL_HINT = (
    "install the local extra from a checkout of this repository: "
    "pip install ./local-aws '.[local]' (make install does this)"
)
