"""Custom cfn-lint rules for what cfn-lint and checkov do not check in the product templates.

cfn-lint loads every public module here with ``--append-rules valohai_hybrid/cfnlint_rules``;
modules are loaded on their own, so each rule file imports nothing from its siblings.
"""
