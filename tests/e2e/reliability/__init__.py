"""The reliability suite: a package, so that its package-scoped fixtures (the platform, the IAM
product, whose role names are per account) end with it rather than with the session."""
