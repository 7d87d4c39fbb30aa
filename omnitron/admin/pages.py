"""Admin pages of records: read-only ones, and change forms that write only what
changed."""


class ReadOnlyMixin:
    """An audit or a record in the admin: shown, never added, changed or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChangedFieldsOnlyMixin:
    """A change form writes only the fields the operator changed (and the auto_now
    ones): a whole row written back as the page had read it undid what the API wrote
    meanwhile (the ERP's is_send, a capture's attributes)."""

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        fields = {field.name: field for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in fields]
        if changed:
            stamped = [name for name, field in fields.items() if getattr(field, "auto_now", False)]
            obj.save(update_fields=[*changed, *stamped])
        return None
