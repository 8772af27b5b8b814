"""IAM authorization in the local AWS: a real policy engine (see `engine`)."""
