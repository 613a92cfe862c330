"""What a browser would submit for a form on a page, read from the page's HTML."""

from html.parser import HTMLParser

# Inputs whose value a browser sends only when they are checked.
CHECKABLE = {"checkbox", "radio"}
# Inputs a browser never sends on its own (a submit button only when it is the one pressed).
NOT_SENT = {"submit", "button", "image", "reset", "file"}


class _FormReader(HTMLParser):
    """Collects the successful controls of the form with the given id (or the first POST form)."""

    def __init__(self, form_id: str | None):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.found = False
        self.data: dict[str, list[str]] = {}
        self._select: tuple[str, bool] | None = None  # (name, multiple)
        self._options: list[tuple[str, bool]] = []  # (value, selected) of the open select
        self._option_text: list[str] | None = None
        self._option_attrs: dict | None = None
        self._textarea: str | None = None
        self._textarea_text: list[str] = []

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.found:
            wanted = (
                attrs.get("id") == self.form_id
                if self.form_id
                else (attrs.get("method") or "").lower() == "post"
                and attrs.get("id") != "logout-form"
            )
            if wanted:
                self.inside = self.found = True
            return
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = (attrs.get("type") or "text").lower()
            if kind in NOT_SENT:
                return
            if kind in CHECKABLE:
                if "checked" in attrs:
                    self._add(name, attrs.get("value", "on"))
                return
            self._add(name, attrs.get("value", ""))
        elif tag == "select" and name and "disabled" not in attrs:
            self._select = (name, "multiple" in attrs)
            self._options = []
        elif tag == "option" and self._select is not None:
            self._option_attrs = attrs
            self._option_text = []
        elif tag == "textarea" and name and "disabled" not in attrs:
            self._textarea = name
            self._textarea_text = []

    def handle_data(self, data):
        if self._option_text is not None:
            self._option_text.append(data)
        if self._textarea is not None:
            self._textarea_text.append(data)

    def _close_option(self):
        if self._option_attrs is None:
            return
        attrs = self._option_attrs
        value = attrs["value"] if "value" in attrs else "".join(self._option_text or []).strip()
        self._options.append((value, "selected" in attrs))
        self._option_attrs = self._option_text = None

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option":
            self._close_option()
        elif tag == "select" and self._select is not None:
            self._close_option()
            name, multiple = self._select
            chosen = [value for value, selected in self._options if selected]
            if not chosen and not multiple and self._options:
                chosen = [self._options[0][0]]  # a browser sends the first option
            for value in chosen:
                self._add(name, value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._textarea_text)
            # HTML drops one newline right after <textarea>.
            self._add(self._textarea, text[1:] if text.startswith("\n") else text)
            self._textarea = None


def form_data(html: str, form_id: str | None = None) -> dict[str, list[str]]:
    """The fields of the form as a browser would POST them (lists, for Django's test client)."""
    reader = _FormReader(form_id)
    reader.feed(html)
    reader.close()
    if not reader.found:
        raise AssertionError(f"no form {form_id or '(POST)'} on the page")
    return reader.data
