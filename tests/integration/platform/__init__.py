"""A package, so that package-scoped fixtures below end with it (pytest 9.1 scopes them to
packages; in a plain directory they lasted the whole session)."""
