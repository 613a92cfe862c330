"""An automation's transaction diagram: where an event goes, drawn from its configuration.

Pure layout: boxes and edges with their coordinates and text, placed the
same way every time; templates/catalog/partials/_diagram.svg draws them.
The main column is the path every event takes (ingestion, the guardrails
before the model, the model, the guardrails after it, routing); the side
column is what may follow (the review queue, approved intents, each
intent's action). Every edge carries its latency budget and trust level in
words, and untrusted or public hops are dashed as well as labelled, so the
picture never relies on colour. Text is owner-written: the template escapes
it, and `clean` removes what XML cannot hold at all.
"""

from dataclasses import dataclass, field
from urllib.parse import urlparse

from django.conf import settings

from automations.adapters import UnknownAdapter, adapter_for
from automations.guardrails import GUARDRAILS
from automations.guardrails.pii_policy import host_is_private, model_host
from automations.outbound import INTERNAL_NAMES, address_is_internal, host_address, host_target
from automations.providers import provider_for
from automations.services.actions import max_attempts
from catalog.models import ApiToken, Automation, IntentRisk

WIDTH = 1000
MARGIN = 20
MAIN_X, MAIN_W = 20, 380
SIDE_X, SIDE_W = 600, 380
ACTION_INSET = 36  # the side column's spine runs left of the action boxes
GAP = 72  # between boxes: room for three lines of an edge's label
TITLE_H, LINE_H, PAD = 22, 16, 10
CHAR_W = 6.7  # a 12-unit font's average glyph, to cut lines that would overflow
LABEL_CHARS = 58


def clean(text: str) -> str:
    """One line of text an SVG may hold: no control characters, no line breaks."""
    text = " ".join(str(text).split())
    return "".join(ch for ch in text if ch.isprintable() and ch not in "\ufffe\uffff")


def fit(text: str, width: float) -> str:
    """`text` cut with an ellipsis to what fits in `width` units."""
    text, most = clean(text), max(4, int(width / CHAR_W))
    return text if len(text) <= most else text[: most - 1] + "…"


@dataclass
class Box:
    key: str  # names the box for tests and styling: source, model, routing, action-1 ...
    kind: str  # source | guardrails | model | routing | review | approved | action
    title: str
    lines: list[str]
    x: float
    y: float
    width: float
    trust: str = ""  # "untrusted", "public", "private", "internal": drawn dashed when not trusted

    @property
    def height(self) -> float:
        return TITLE_H + LINE_H * len(self.lines) + PAD

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def mid_y(self) -> float:
        return self.y + self.height / 2

    @property
    def text_x(self) -> float:
        return self.x + PAD

    @property
    def title_y(self) -> float:
        return self.y + 16

    @property
    def shown_title(self) -> str:
        return fit(self.title, self.width - 2 * PAD)

    @property
    def text_rows(self) -> list[tuple[float, str]]:
        """(y, text) of each line under the title."""
        top = self.y + TITLE_H + LINE_H - 2
        return [
            (top + n * LINE_H, fit(line, self.width - 2 * PAD)) for n, line in enumerate(self.lines)
        ]

    @property
    def dashed(self) -> bool:
        return self.trust in ("untrusted", "public")


@dataclass
class Edge:
    key: str
    points: list[tuple[float, float]]
    label: list[str]
    label_x: float
    label_y: float  # the first line's baseline
    trust: str = ""  # "untrusted" and "public" are dashed
    label_chars: int = LABEL_CHARS

    @property
    def path(self) -> str:
        return " ".join(f"{x:g},{y:g}" for x, y in self.points)

    @property
    def label_rows(self) -> list[tuple[float, str]]:
        width = self.label_chars * CHAR_W
        return [(self.label_y + n * 14, fit(line, width)) for n, line in enumerate(self.label)]

    @property
    def dashed(self) -> bool:
        return self.trust in ("untrusted", "public")


@dataclass
class Diagram:
    automation: Automation
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = WIDTH

    @property
    def height(self) -> int:
        return int(max(box.bottom for box in self.boxes) + MARGIN)

    @property
    def title(self) -> str:
        return clean(f"Transaction diagram of {self.automation.name} ({self.automation.slug})")

    @property
    def description(self) -> str:
        """The whole picture in one sentence, for screen readers and the img's alt text."""
        actions = sum(1 for box in self.boxes if box.kind == "action")
        return clean(
            f"Events reach {self.automation.slug} through the ingestion API, pass"
            f" {len(GUARDRAILS)} guardrails around the model ({self.box('model').title}),"
            f" are routed by mode {self.automation.mode} to the review queue or to"
            f" {actions} action{'s' if actions != 1 else ''}."
        )

    def box(self, key: str) -> Box:
        return next(box for box in self.boxes if box.key == key)


def automation_diagram(automation: Automation) -> Diagram:
    """The diagram of `automation` (its intents, segments and rules prefetched or not)."""
    diagram = Diagram(automation)
    main = [
        _source_box(automation),
        _guardrails_box(automation, "before"),
        _model_box(automation),
        _guardrails_box(automation, "after"),
        _routing_box(automation),
    ]
    y = MARGIN
    for box in main:
        box.x, box.y, box.width = MAIN_X, y, MAIN_W
        y = box.bottom + GAP
    diagram.boxes += main
    for upper, lower, label, trust in _main_edges(automation):
        a, b = diagram.box(upper), diagram.box(lower)
        diagram.edges.append(
            Edge(
                f"{upper}-{lower}",
                [(a.cx, a.bottom), (b.cx, b.y)],
                label,
                a.cx + 12,
                a.bottom + 18,
                trust,
            )
        )
    _side_column(diagram, automation)
    return diagram


def _box(key: str, kind: str, title: str, lines: list[str], trust: str = "") -> Box:
    return Box(key, kind, title, lines, 0, 0, 0, trust)


def _source_box(automation: Automation) -> Box:
    live = ApiToken.objects.filter(revoked_at=None)
    limited = live.filter(automations=automation).count()
    everywhere = live.filter(automations=None).count()
    return _box(
        "source",
        "source",
        "Events in: the ingestion API",
        [
            f"POST /api/v1/automations/{automation.slug}/events",
            f"API tokens: {limited} limited to it, {everywhere} for every automation",
            "or: manage.py ingest FILE.jsonl --automation",
        ],
        "untrusted",
    )


def _guardrails_box(automation: Automation, stage: str) -> Box:
    names = [g.name for g in GUARDRAILS]
    lines = [
        f"{names.index(g.name) + 1}. {g.name}: {_guardrail_words(automation, g.name)}"
        for g in GUARDRAILS
        if g.stage == stage
    ]
    title = "Guardrails before the model" if stage == "before" else "Guardrails on the decision"
    return _box(f"guardrails-{stage}", "guardrails", title, lines)


def _guardrail_words(automation: Automation, name: str) -> str:
    """What one guardrail checks for this automation, in a few words."""
    segments = list(automation.segments.all())
    if name == "segment_policy":
        off = [s.key for s in segments if not s.enabled]
        if not automation.enabled:
            return "the automation is switched off: everything blocks"
        return f"kill switches; off: {', '.join(off)}" if off else "kill switches, all on"
    if name == "do_not_automate":
        rules = list(automation.do_not_automate.all())
        blocking = sum(1 for rule in rules if rule.effect == "block")
        return f"{len(rules)} rule{'s' if len(rules) != 1 else ''} ({blocking} blocking)"
    if name == "budget":
        if not provider_for(automation).bills:
            return "no model cost"
        return f"{automation.daily_budget_usd:.2f} USD a day, then review"
    if name == "pii_policy":
        if automation.data_classification == "restricted":
            return "PII redacted for public hosts"
        return f"data {automation.data_classification}: sent as is"
    if name == "intent_risk":
        high = [i.name for i in automation.intents.all() if i.risk == IntentRisk.HIGH]
        return f"high-risk wait for a person: {', '.join(high)}" if high else "no high-risk intent"
    if name == "confidence":
        return f"below {automation.min_confidence:.2f} goes to a person"
    return "checked in order"


def _model_box(automation: Automation) -> Box:
    provider = provider_for(automation)
    if not provider.remote:
        return _box(
            "model",
            "model",
            f"Decision: {automation.provider} (in process)",
            ["the event stays on this machine", f"prompt v{automation.prompt_version}"],
            "private",
        )
    hostname, netloc = model_host(automation)
    private = host_is_private(hostname, netloc)
    key_env = automation.api_key_env or "OPENAI_API_KEY"
    lines = [
        f"host {netloc}",
        "private model host: yes, may see unredacted data"
        if private
        else "private model host: no (HANDRAIL_PRIVATE_MODEL_HOSTS)",
        host_reach(hostname)[1],
        f"data {automation.data_classification}"
        + ("" if private or automation.data_classification != "restricted" else ", PII redacted"),
        f"prompt v{automation.prompt_version}; key from {key_env}",
    ]
    title = f"Model: {automation.provider} {automation.model}".strip()
    return _box("model", "model", title, lines, "private" if private else "public")


def host_reach(hostname: str) -> tuple[str, str]:
    """("public" | "internal" | "refused", in words): the outbound policy on a host as written."""
    address = host_address(hostname)
    name = hostname.lower().rstrip(".")
    internal = (address is not None and address_is_internal(address)) or (
        name in INTERNAL_NAMES or name.endswith(".localhost")
    )
    if not internal:
        return "public", "public address (checked on every connection)"
    if host_target(hostname) is None:
        return "internal", "internal address, allowed (listed)"
    return "refused", "internal address, not listed: refused"


def _routing_box(automation: Automation) -> Box:
    lines = []
    if not automation.enabled:
        lines.append("switched off: every new run is blocked")
    for segment in automation.segments.all():
        if not segment.enabled:
            lines.append(f"segment {segment.key}: OFF (kill switch), blocked")
        else:
            mode = segment.mode or f"{automation.mode} (inherited)"
            lines.append(f"segment {segment.key}: on, mode {mode}")
    lines.append("shadow records; suggest, approve wait for a person")
    lines.append("autonomous acts when every guardrail passed")
    return _box("routing", "routing", f"Routing by mode: {automation.mode}", lines)


def _main_edges(automation: Automation) -> list[tuple[str, str, list[str], str]]:
    provider = provider_for(automation)
    if provider.remote:
        hostname, netloc = model_host(automation)
        private = host_is_private(hostname, netloc)
        total = automation.latency_budget_ms * provider.attempts / 1000
        budget = (
            f"budget {automation.latency_budget_ms:,} ms × {provider.attempts} attempts"
            f" ({total:g} s at most), then review"
        )
        trust = "private" if private else "public"
        scheme = urlparse(provider.endpoint(automation)).scheme.upper() or "HTTP"
        to_model = [budget, f"trust: {trust} model host, over {scheme}"]
    else:
        trust = "private"
        to_model = ["in process: no network, no timeout", "trust: stays on this machine"]
    return [
        (
            "source",
            "guardrails-before",
            [
                "trust: external input, untrusted",
                f"bearer token; {settings.HANDRAIL_RATE_LIMIT_PER_MINUTE:,}/min per token",
                f"body at most {settings.HANDRAIL_MAX_EVENT_BYTES:,} bytes",
            ],
            "untrusted",
        ),
        ("guardrails-before", "model", to_model, trust),
        (
            "model",
            "guardrails-after",
            [
                "trust: model output, untrusted until validated",
                "JSON Schema of the intent; confidence 0-1",
            ],
            "untrusted",
        ),
        (
            "guardrails-after",
            "routing",
            ["verdicts: the strictest wins", "block > review > pass"],
            "",
        ),
    ]


def _side_column(diagram: Diagram, automation: Automation) -> None:
    """The review queue beside routing, approved intents under it, then each intent's action."""
    routing = diagram.box("routing")
    reviewers = [user.get_username() for user in automation.reviewers.all()]
    review = _box(
        "review",
        "review",
        "Review queue",
        [
            f"reviewers: {', '.join(reviewers)}" if reviewers else "reviewers: none assigned",
            f"SLA {automation.review_sla_minutes} min;"
            f" a claim is held {settings.HANDRAIL_REVIEW_LEASE_SECONDS} s",
        ],
    )
    review.x, review.y, review.width = SIDE_X, routing.y, SIDE_W
    approved = _box(
        "approved",
        "approved",
        "Approved intents",
        ["the kill switch is checked again before each send"],
    )
    approved.x, approved.width = SIDE_X, SIDE_W
    approved.y = max(routing.bottom, review.bottom) + GAP
    diagram.boxes += [review, approved]
    down_x = SIDE_X + 40  # review -> approved, left in the column: room for its label
    diagram.edges += [
        Edge(
            "routing-review",
            [(routing.x + routing.width, review.mid_y), (review.x, review.mid_y)],
            ["a person is needed:", "suggest, approve, or", "a guardrail asked"],
            routing.x + routing.width + 10,
            review.mid_y - 36,
            label_chars=int((SIDE_X - MAIN_X - MAIN_W - 20) / CHAR_W),
        ),
        Edge(
            "review-approved",
            [(down_x, review.bottom), (down_x, approved.y)],
            ["approved or edited by a person", "(suggest: the person acts outside Handrail)"],
            down_x + 12,
            review.bottom + 24,
        ),
        Edge(
            "routing-approved",
            [
                (routing.cx, routing.bottom),
                (routing.cx, approved.mid_y),
                (approved.x, approved.mid_y),
            ],
            ["autonomous: every guardrail passed"],
            routing.cx + 12,
            approved.mid_y - 8,
        ),
    ]
    spine_x, branch_y = SIDE_X + ACTION_INSET / 2, approved.bottom
    y = approved.bottom + GAP
    for number, intent in enumerate(automation.intents.all(), start=1):
        box, label, trust = _action(intent, number)
        box.x, box.y, box.width = SIDE_X + ACTION_INSET, y, SIDE_W - ACTION_INSET
        diagram.boxes.append(box)
        # One bus down the spine: each edge starts where the one before it turned off.
        diagram.edges.append(
            Edge(
                f"approved-action-{number}",
                [(spine_x, branch_y), (spine_x, box.mid_y), (box.x, box.mid_y)],
                label,
                spine_x + 10,
                box.y - GAP + 20,
                trust,
            )
        )
        branch_y, y = box.mid_y, box.bottom + GAP


def _action(intent, number: int) -> tuple[Box, list[str], str]:
    """The box of one intent's action, the label of the edge into it, and its trust."""
    config = intent.action_config or {}
    title = f"{intent.name} ({intent.risk} risk)"
    if not intent.action_adapter:
        return (
            _box(f"action-{number}", "action", title, ["no action: nothing is sent"]),
            ["nothing to send"],
            "",
        )
    try:
        adapter = adapter_for(intent.action_adapter)
    except UnknownAdapter:
        lines = [f"adapter {intent.action_adapter}: unknown, the action fails"]
        return _box(f"action-{number}", "action", title, lines), ["unknown adapter"], ""
    url = urlparse(str(config.get("url", "")))
    reach, reach_words = host_reach(url.hostname) if url.hostname else ("refused", "no target host")
    secret_env = config.get("secret_env", "")
    lines = [
        f"{adapter.name} to {url.netloc or 'no URL'}",
        reach_words,
        f"signed with the secret in {secret_env}" if secret_env else "no secret named",
    ]
    label = [
        f"timeout {adapter.timeout_seconds(config):g} s × {max_attempts(config)} attempts,"
        " one idempotency key",
        ("trust: signed webhook" if secret_env else "trust: unsigned")
        + (", to a public host" if reach == "public" else ", to an internal host"),
    ]
    trust = "public" if reach == "public" else "internal"
    return _box(f"action-{number}", "action", title, lines, trust), label, trust
