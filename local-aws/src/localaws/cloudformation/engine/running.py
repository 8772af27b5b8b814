"""Running a planned operation: create, update, delete, resource by resource, with rollback."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from localaws.cloudformation import schema
from localaws.cloudformation.model import Plan, ResourceRecord, Stack, now
from localaws.cloudformation.provisioners.base import (
    NeedsReplacement,
    Provisioned,
    ProvisionError,
)
from localaws.locking import BACKEND_LOCK

from .base import _Change, is_custom, log
from .planning import PlanningMixin


class RunningMixin(PlanningMixin):
    """The stack operations, each in a thread of its own, and what they do to one resource."""

    def start(self, stack: Stack, operation: Callable[[], object]) -> None:
        """Run `operation` in the background; the stack settles when it ends."""
        stack.settled.clear()

        def run() -> None:
            try:
                with BACKEND_LOCK:
                    operation()
            except Exception as exc:  # a bug here must not leave a stack in progress forever
                log.exception("stack operation on %s crashed", stack.name)
                with BACKEND_LOCK:
                    failed = stack.status.replace("_IN_PROGRESS", "_FAILED")
                    self.set_status(stack, failed, f"Internal error in the local AWS: {exc}")
            finally:
                stack.settled.set()

        threading.Thread(target=run, name=f"cfn-{stack.name}", daemon=True).start()

    def create(self, stack: Stack) -> bool:
        """Create every resource; roll back (or not) on failure, as OnFailure says."""
        plan = stack.plan
        assert plan is not None
        created: list[str] = []
        failed = None
        for logical_id in plan.order:
            created.append(logical_id)
            if not self._create_resource(stack, plan, logical_id):
                failed = logical_id
                break
        if failed is None:
            failed = self._publish_outputs(stack, plan)
        if failed is None:
            self.set_status(stack, "CREATE_COMPLETE")
            return True
        reason = f"The following resource(s) failed to create: [{failed}]. "
        if stack.on_failure == "DO_NOTHING":
            self.set_status(stack, "CREATE_FAILED", reason)
            return False
        self.set_status(stack, "ROLLBACK_IN_PROGRESS", reason + "Rollback requested by user.")
        ok = self._delete_all(stack, plan, reversed(created), create_rollback=True)
        self._release_exports(stack)
        self.set_status(
            stack,
            "ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED",
            None if ok else "The following resource(s) failed to delete during rollback.",
        )
        if ok and stack.on_failure == "DELETE":
            self.delete(stack)
        return False

    def update(self, stack: Stack, new_plan: Plan, capabilities: list[str] | None = None) -> bool:
        """Update to `new_plan`; `capabilities` (None: unchanged) are what the update
        acknowledged, for its nested stacks; a rollback restores the stack's earlier ones."""
        old_plan = stack.plan
        assert old_plan is not None
        old_outputs, old_capabilities = stack.outputs, stack.capabilities
        if capabilities is not None:
            stack.capabilities = capabilities
        stack.plan = new_plan
        stack.last_updated_time = now()
        self.set_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")
        journal: list[_Change] = []
        failed = None
        for logical_id in new_plan.order:
            if not self._update_resource(stack, old_plan, new_plan, logical_id, journal):
                failed = logical_id
                break
        if failed is None:
            failed = self._publish_outputs(stack, new_plan)
        if failed is None:
            self.set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
            self._cleanup_after_update(stack, old_plan, new_plan, journal)
            self.set_status(stack, "UPDATE_COMPLETE")
            return True
        self.set_status(
            stack,
            "UPDATE_ROLLBACK_IN_PROGRESS",
            f"The following resource(s) failed to update: [{failed}]. ",
        )
        stack.plan, stack.capabilities = old_plan, old_capabilities
        ok = self._roll_back_update(stack, old_plan, new_plan, journal)
        stack.outputs = old_outputs
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE" if ok else "UPDATE_ROLLBACK_FAILED")
        return False

    def delete(
        self, stack: Stack, *, retain: Iterable[str] = (), create_rollback: bool = False
    ) -> bool:
        plan = stack.plan
        self.set_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
        ok = True
        if plan is not None:
            ok = self._delete_all(
                stack,
                plan,
                reversed(plan.order),
                retain=set(retain),
                create_rollback=create_rollback,
            )
        if not ok:
            failed = [r.logical_id for r in stack.resources.values() if r.status == "DELETE_FAILED"]
            self.set_status(
                stack, "DELETE_FAILED", f"The following resource(s) failed to delete: {failed}. "
            )
            return False
        self._release_exports(stack)
        stack.deletion_time = now()
        self.set_status(stack, "DELETE_COMPLETE")
        self.backend.forget(stack)
        return True

    # -- one resource --------------------------------------------------------------------------
    def _create_resource(self, stack: Stack, plan: Plan, logical_id: str) -> bool:
        definition = plan.resources[logical_id]
        record = ResourceRecord(
            logical_id,
            definition["Type"],
            "CREATE_IN_PROGRESS",
            metadata=definition.get("Metadata"),
        )
        stack.resources[logical_id] = record
        self._resource_event(stack, record)
        try:
            props = self._properties(stack, plan, logical_id)
            record.props = props
            provisioned = self._provisioner(record).create(self._context(stack, record), props)
        except Exception as exc:
            if isinstance(exc, ProvisionError) and exc.physical_id:
                record.provisioned = Provisioned(exc.physical_id)
            return self._fail(stack, record, "CREATE_FAILED", exc)
        record.provisioned = provisioned
        self._resource_event(stack, record, "Resource creation Initiated")
        self._stabilize(record)
        self._set_resource(stack, record, "CREATE_COMPLETE")
        return True

    def _update_resource(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, logical_id: str, journal: list[_Change]
    ) -> bool:
        record = stack.resources.get(logical_id)
        if record is None or logical_id not in old_plan.order:
            journal.append(_Change("added", logical_id, None))
            return self._create_resource(stack, new_plan, logical_id)
        definition = new_plan.resources[logical_id]
        try:
            new_props = self._properties(stack, new_plan, logical_id)
        except Exception as exc:
            return self._fail(stack, record, "UPDATE_FAILED", exc)
        record.metadata = definition.get("Metadata")
        type_changed = definition["Type"] != old_plan.resources[logical_id]["Type"]
        if not type_changed and new_props == record.props:
            return True
        before = copy.copy(record)
        custom = is_custom(record.resource_type)
        replace = type_changed or (
            not custom and schema.needs_replacement(record.resource_type, record.props, new_props)
        )
        if not replace:
            self._set_resource(stack, record, "UPDATE_IN_PROGRESS")
            try:
                assert record.provisioned is not None
                provisioned = self._provisioner(record).update(
                    self._context(stack, record), record.provisioned, record.props, new_props
                )
            except NeedsReplacement:
                replace = True
            except Exception as exc:
                journal.append(_Change("updated", logical_id, before))
                return self._fail(stack, record, "UPDATE_FAILED", exc)
            else:
                replaced = custom and provisioned.physical_id != record.physical_id
                journal.append(_Change("replaced" if replaced else "updated", logical_id, before))
                record.provisioned, record.props = provisioned, new_props
                self._set_resource(stack, record, "UPDATE_COMPLETE")
                return True
        record.resource_type = definition["Type"]
        self._set_resource(
            stack,
            record,
            "UPDATE_IN_PROGRESS",
            "Requested update requires the creation of a new physical resource; "
            "hence creating one.",
        )
        journal.append(_Change("replaced", logical_id, before))
        try:
            provisioned = self._provisioner(record).create(self._context(stack, record), new_props)
        except Exception as exc:
            record.provisioned = (
                Provisioned(exc.physical_id)
                if isinstance(exc, ProvisionError) and exc.physical_id
                else None
            )
            return self._fail(stack, record, "UPDATE_FAILED", exc)
        record.provisioned, record.props = provisioned, new_props
        self._resource_event(stack, record, "Resource creation Initiated")
        self._stabilize(record)
        self._set_resource(stack, record, "UPDATE_COMPLETE")
        return True

    def _cleanup_after_update(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, journal: list[_Change]
    ) -> None:
        for change in reversed(journal):
            if change.kind == "replaced" and change.before and change.before.provisioned:
                definition = old_plan.resources[change.logical_id]
                self._delete_physical(stack, change.before, definition, "UpdateReplacePolicy")
        removed = [lid for lid in reversed(old_plan.order) if lid not in new_plan.order]
        for logical_id in removed:
            record = stack.resources.get(logical_id)
            if record is not None:
                self._delete_resource(stack, record, old_plan.resources[logical_id])
                del stack.resources[logical_id]

    def _roll_back_update(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, journal: list[_Change]
    ) -> bool:
        ok = True
        for change in reversed(journal):
            record = stack.resources[change.logical_id]
            if change.kind == "added":
                ok &= self._delete_resource(stack, record, new_plan.resources[change.logical_id])
                del stack.resources[change.logical_id]
            elif change.kind == "replaced":
                assert change.before is not None
                if record.provisioned and (
                    change.before.provisioned is None
                    or record.physical_id != change.before.physical_id
                ):
                    ok &= self._delete_physical(
                        stack, record, new_plan.resources[change.logical_id], "DeletionPolicy"
                    )
                self._restore(stack, change.before)
            else:
                assert change.before is not None
                ok &= self._revert_in_place(stack, record, change.before)
        return ok

    def _revert_in_place(
        self, stack: Stack, record: ResourceRecord, before: ResourceRecord
    ) -> bool:
        self._set_resource(stack, record, "UPDATE_IN_PROGRESS")
        try:
            assert record.provisioned is not None
            provisioned = self._provisioner(record).update(
                self._context(stack, record), record.provisioned, record.props, before.props
            )
        except Exception as exc:
            self._fail(stack, record, "UPDATE_FAILED", exc)
            return False
        record.provisioned, record.props = provisioned, before.props
        self._set_resource(stack, record, "UPDATE_COMPLETE")
        return True

    def _restore(self, stack: Stack, before: ResourceRecord) -> None:
        stack.resources[before.logical_id] = before
        self._set_resource(stack, before, "UPDATE_COMPLETE")

    def _delete_all(
        self,
        stack: Stack,
        plan: Plan,
        order: Iterable[str],
        *,
        retain: set[str] | None = None,
        create_rollback: bool = False,
    ) -> bool:
        ok = True
        for logical_id in order:
            record = stack.resources.get(logical_id)
            if record is None or record.status in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
                continue
            definition = plan.resources[logical_id]
            if retain and logical_id in retain:
                self._set_resource(stack, record, "DELETE_SKIPPED")
                continue
            ok &= self._delete_resource(stack, record, definition, create_rollback=create_rollback)
        return ok

    def _delete_resource(
        self,
        stack: Stack,
        record: ResourceRecord,
        definition: dict[str, Any],
        *,
        create_rollback: bool = False,
    ) -> bool:
        return self._delete_physical(
            stack, record, definition, "DeletionPolicy", create_rollback=create_rollback
        )

    def _delete_physical(
        self,
        stack: Stack,
        record: ResourceRecord,
        definition: dict[str, Any],
        policy_key: str,
        *,
        create_rollback: bool = False,
    ) -> bool:
        policy = definition.get(policy_key, "Delete")
        retained = policy == "Retain" or (policy == "RetainExceptOnCreate" and not create_rollback)
        if retained and record.provisioned is not None:
            self._set_resource(stack, record, "DELETE_SKIPPED")
            return True
        if record.provisioned is None:
            self._set_resource(stack, record, "DELETE_COMPLETE")
            return True
        self._set_resource(stack, record, "DELETE_IN_PROGRESS")
        try:
            self._provisioner(record).delete(
                self._context(stack, record, create_rollback=create_rollback),
                record.provisioned,
                record.props,
            )
        except Exception as exc:
            self._fail(stack, record, "DELETE_FAILED", exc)
            return False
        self._stabilize(record)
        self._set_resource(stack, record, "DELETE_COMPLETE")
        return True
