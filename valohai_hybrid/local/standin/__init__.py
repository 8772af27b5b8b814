"""A local stand-in for Valohai's side of the event contract (docs/valohai-event-contract.md)."""

from .client import StandInClient
from .receiver import Attempt, Binding, Fault, ReceivedEvent, Receiver
from .server import StandIn

__all__ = ["Attempt", "Binding", "Fault", "ReceivedEvent", "Receiver", "StandIn", "StandInClient"]
