"""The local AWS: moto server on 127.0.0.1, extended so that the real product runs on it.

Development and test infrastructure only; nothing under here ships to customers. Each extension
lives in its own module and is applied by `extensions.install()` before the server starts.
"""
