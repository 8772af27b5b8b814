"""One provisioner per resource type the engine knows beyond moto's own models."""
