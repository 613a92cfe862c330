"""The error a catalog file raises, and the list its problems collect in."""


class CatalogInvalid(Exception):
    """A catalog file that cannot be loaded; `errors` holds every `path: message`."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


class Problems:
    """Every problem found in one document, in the order they were found."""

    def __init__(self):
        self.messages: list[str] = []
        self.found: list[tuple[str, str]] = []  # (path, message), for callers that place them

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}")
        self.found.append((path, message))

    def raise_if_any(self) -> None:
        if self.messages:
            raise CatalogInvalid(self.messages)


def key_path(path: str, key) -> str:
    """`automations[0]` + `slug` -> `automations[0].slug`."""
    return f"{path}.{key}" if path else str(key)


def item_path(path: str, index: int) -> str:
    return f"{path}[{index}]"
