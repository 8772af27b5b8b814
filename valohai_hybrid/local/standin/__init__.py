"""A local stand-in for Valohai's side of the event contract (docs/valohai-event-contract.md)."""

from .client import StandInClient
from .receiver import Attempt, Binding, Fault, ReceivedEvent, Receiver
from .server import StandIn

#: Platform stack (template.yaml) parameters under which launched setups can report to a
#: stand-in: it listens on 127.0.0.1, a loopback ValohaiApiUrl the functions refuse otherwise.
#: For a platform on the developer's own machine only (the local AWS), never in AWS.
DEVELOPMENT_PLATFORM = {"AllowLoopbackValohaiApi": "true"}

__all__ = [
    "DEVELOPMENT_PLATFORM",
    "Attempt",
    "Binding",
    "Fault",
    "ReceivedEvent",
    "Receiver",
    "StandIn",
    "StandInClient",
]
