"""Custom-resource functions of Valohai Hybrid on AWS (shipped to Lambda)."""

__version__ = "0.1.0"

#: Sent as User-Agent and `producer` with every event, so Valohai can tell releases apart.
PRODUCER = f"valohai-hybrid-aws/{__version__}"
