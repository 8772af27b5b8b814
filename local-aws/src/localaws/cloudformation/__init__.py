"""A CloudFormation engine for the local AWS, in place of moto's.

moto's CloudFormation creates resources synchronously through a lazy map, cannot read nested
stack outputs, ignores custom-resource responses and has no rollback (see
local-aws/tests/test_canaries.py for each gap). This engine keeps moto's resource models and
backends, and adds CloudFormation's semantics on top: a dependency graph, asynchronous stack
operations with events, custom resources that are waited for, updates and rollbacks.
"""
