"""Errors actions raise; views and the API turn them into messages, never into a 500."""


class ActionError(Exception):
    """A request that cannot be carried out as asked. `field_errors` maps field → messages."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class ConflictError(ActionError):
    """Someone else saved the record since it was loaded: the change is not applied."""

    def __init__(self, message: str = "", current_version: int | None = None):
        super().__init__(
            message
            or "Someone else changed this record while you were editing. Review their changes and try again."
        )
        self.current_version = current_version


class PermissionError_(ActionError):
    pass
