"""Deterministic, realistic demo events for the automations in catalog/demo/automations.yaml.

Event number `i` depends only on `(seed, i)`, never on how many events are asked
for or on today's date, so seeding again (with any count) replays the same
idempotency keys with the same payloads instead of conflicting with them.
Names, emails (example.com/.org/.net) and phone numbers (reserved fiction
ranges) are invented.
"""

import random
import unicodedata
from dataclasses import dataclass

DEFAULT_SEED = 4711

# Share of events per automation, in order.
MIX = (("support-triage", 0.55), ("kyc-document-triage", 0.33), ("refund-eligibility", 0.12))


@dataclass(frozen=True)
class DemoEvent:
    automation: str
    idempotency_key: str
    segment: str
    source: str
    payload: dict


def demo_events(*, count: int, seed: int = DEFAULT_SEED) -> list[DemoEvent]:
    """The first `count` demo events; the same arguments always give the same events."""
    return [demo_event(number=number, seed=seed) for number in range(1, count + 1)]


def demo_event(*, number: int, seed: int = DEFAULT_SEED) -> DemoEvent:
    """Demo event `number` (from 1), the same for a given seed whatever else is generated."""
    rng = random.Random(f"handrail-demo:{seed}:{number}")
    slug = weighted(rng, MIX)
    return BUILDERS[slug](rng, number)


def weighted(rng: random.Random, choices) -> str:
    values = [value for value, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(values, weights=weights)[0]


# People -------------------------------------------------------------------------------

FIRST_NAMES = [
    "Aisha", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jakub",
    "Kemi", "Liam", "Maya", "Nikolai", "Olga", "Priya", "Quentin", "Rania", "Samir", "Tess",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adeyemi", "Brennan", "Costa", "Dubois", "Eriksen", "Fischer", "Gupta", "Hughes", "Ivanova",
    "Jensen", "Kowalski", "Lindqvist", "Mensah", "Nakamura", "O'Neill", "Petrov", "Quinn",
    "Romero", "Schmidt", "Takahashi", "Usman", "Van Dijk", "Walsh", "Yilmaz", "Zhang",
]  # fmt: skip
COMPANIES = [
    "Northwind Traders", "Bluebird Logistics", "Acme Analytics", "Harbor Health", "Lumen Labs",
    "Kestrel Media", "Orchard Foods", "Granite Legal", "Tidewater Energy", "Pinecone Studio",
]  # fmt: skip
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def email_for(rng: random.Random, name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = ascii_name.lower().replace("'", "").replace(" ", ".")
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def phone_number(rng: random.Random) -> str:
    """A number from the ranges reserved for fiction (UK drama, US 555-01xx)."""
    if rng.random() < 0.5:
        return f"+44 20 7946 0{rng.randint(0, 999):03d}"
    return f"+1 202-555-01{rng.randint(0, 99):02d}"


# Support tickets ----------------------------------------------------------------------

SUPPORT_SEGMENTS = (("smb", 0.5), ("enterprise", 0.3), ("trial", 0.2))
SUPPORT_SOURCES = (("zendesk", 0.6), ("intercom", 0.3), ("web-form", 0.1))

# (kind, subject, body); {placeholders} are filled per ticket.
TICKETS = [
    ("billing", "Charged twice for {month}",
     "Hi, our credit card was charged twice for invoice {invoice} this month. Could you refund "
     "the duplicate payment? The card ends in {last4}."),
    ("billing", "VAT number missing on invoice",
     "Hello, invoice {invoice} does not show our VAT number, so finance cannot book it. Please "
     "reissue it with VAT ID {vat}."),
    ("billing", "Refund for unused seats",
     "We reduced the team from {seats} to {fewer} people last week. Can we get a refund or a "
     "credit for the unused seats on the next invoice?"),
    ("billing", "Receipt for annual plan",
     "Could you send me a receipt for the annual plan we paid on {date}? Our accountant needs "
     "it by Friday. You can reach me on {phone}."),
    ("technical", "Dashboard shows a 500 error",
     "Since this morning the reports dashboard shows a 500 error for everyone on our account. "
     "Request id {request_id}."),
    ("technical", "Cannot log in after SSO change",
     "After we rotated our SSO certificate, I cannot log in at all. The login page loops back "
     "to itself. Please call me on {phone} if that is quicker."),
    ("technical", "CSV export times out",
     "Exporting more than {rows} rows to CSV times out after about a minute. Smaller exports "
     "work fine."),
    ("technical", "Everything is down",
     "Your app is completely down for all users in our workspace, we get a blank page. This "
     "is blocking our whole {team} team."),
    ("technical", "Webhooks arriving late",
     "Webhook deliveries to our endpoint arrive 10 to 15 minutes late since yesterday. Nothing "
     "changed on our side."),
    ("technical", "App feels slow",
     "The app has felt slow for the last few days, especially the search page. Not urgent."),
    ("sales", "Pricing for {seats} more seats",
     "We are growing and need {seats} more seats before next quarter. What would the pricing "
     "be, and is there a volume discount?"),
    ("sales", "Question about the Enterprise plan",
     "Does the Enterprise plan include SAML SSO and audit logs? We are considering an upgrade "
     "and would like a quote for {seats} users."),
    ("sales", "Renewing our contract",
     "Our contract renews on {date}. Could someone from your team walk us through the options? "
     "My direct line is {phone}."),
    ("howto", "How do I reset my password?",
     "Hi, I forgot my password and the app only asks for my email. What do I do next?"),
    ("howto", "How do I add a teammate?",
     "I would like to invite my colleague {colleague} ({colleague_email}) to our workspace. "
     "Where is that setting?"),
    ("howto", "Where can I download invoices?",
     "Where can I download invoices for the last 12 months? I can only see the latest one in "
     "my inbox."),
    ("other", "Feedback on the new editor",
     "Just wanted to say the new editor is much nicer. One idea: keyboard shortcuts for "
     "headings would be great."),
    ("other", "Data processing agreement",
     "Our procurement team asks for your data processing agreement and a list of "
     "subprocessors. Who should we contact?"),
]  # fmt: skip

ANGRY = [
    " Honestly this is unacceptable, it is the third time this month.",
    " I am furious. Worst support experience I have had with any vendor.",
    " If this is not fixed today, please cancel my subscription.",
]
LEGAL = [
    " I have forwarded this thread to our lawyer.",
    " If this continues we will have to take legal action.",
]
CHARGEBACK = [
    " If the refund is not processed by Friday I will file a chargeback.",
    " Otherwise I will dispute the charge with my bank.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]


def support_event(rng: random.Random, number: int) -> DemoEvent:
    kind, subject, body = rng.choice(TICKETS)
    name = person_name(rng)
    colleague = person_name(rng)
    seats = rng.choice([5, 10, 25, 40, 120])
    values = {
        "month": rng.choice(MONTHS),
        "invoice": f"INV-2025-{rng.randint(1000, 9999)}",
        "last4": f"{rng.randint(0, 9999):04d}",
        "vat": f"GB{rng.randint(100000000, 999999999)}",
        "seats": seats,
        "fewer": max(1, seats - rng.randint(1, 4)),
        "date": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "phone": phone_number(rng),
        "request_id": f"req_{rng.getrandbits(48):012x}",
        "rows": rng.choice(["50,000", "100,000", "250,000"]),
        "team": rng.choice(["sales", "support", "finance", "operations"]),
        "colleague": colleague,
        "colleague_email": email_for(rng, colleague),
    }
    subject, body = subject.format(**values), body.format(**values)
    roll = rng.random()
    if roll < 0.10:
        body += rng.choice(ANGRY)
    elif roll < 0.15:
        body += rng.choice(LEGAL)
    elif roll < 0.19 and kind == "billing":
        body += rng.choice(CHARGEBACK)
    body += f"\n\nThanks,\n{name}"
    payload = {
        "ticket_id": f"T-{100000 + number}",
        "subject": subject,
        "body": body,
        "channel": rng.choice(["email", "chat", "web form"]),
        "language": "en",
        "customer": {
            "name": name,
            "email": email_for(rng, name),
            "phone": phone_number(rng),
            "company": rng.choice(COMPANIES),
            "plan": rng.choice(["starter", "team", "business", "enterprise"]),
        },
    }
    return DemoEvent(
        automation="support-triage",
        idempotency_key=f"demo-ticket-{number:05d}",
        segment=weighted(rng, SUPPORT_SEGMENTS),
        source=weighted(rng, SUPPORT_SOURCES),
        payload=payload,
    )


# KYC submissions ----------------------------------------------------------------------

# Returning applicants; catalog/demo/automations.yaml has an accept rule for each number.
KNOWN_APPLICANTS = [
    ("Amelia Clarke", "1988-04-12", "533401378", "GB", "2031-09-30", "passport"),
    ("Jonas Becker", "1979-11-03", "C01X00T47", "DE", "2029-02-14", "passport"),
    ("Camille Moreau", "1992-07-21", "23AB45871", "FR", "2032-05-08", "passport"),
    ("Lucía Fernández García", "1985-02-27", "YA5218364", "ES", "2030-12-01", "national_id"),
    ("Marco Rossi", "1990-09-09", "YB7730142", "IT", "2028-06-17", "passport"),
    ("Sanne de Vries", "1983-12-30", "NX4R81Q27", "NL", "2031-03-22", "national_id"),
    ("Ethan Walker", "1995-05-16", "566120987", "US", "2033-01-11", "passport"),
    ("Siobhán Murphy", "1987-03-04", "PE1180274", "IE", "2029-10-25", "passport"),
    ("Piotr Nowak", "1976-08-19", "EF0342911", "PL", "2030-04-02", "national_id"),
    ("Noah Tremblay", "1993-01-28", "FN8824051", "CA", "2032-08-14", "passport"),
]
COUNTRIES = ["GB", "IE", "DE", "FR", "ES", "IT", "NL", "PL", "US", "CA"]
KYC_SEGMENTS = (("retail", 0.65), ("business", 0.25), ("high-net-worth", 0.10))
# What can go wrong with a submission, and how often.
KYC_CASES = (
    ("clean_known", 0.46),
    ("clean_new", 0.14),
    ("expired", 0.10),
    ("blurry", 0.07),
    ("cropped", 0.04),
    ("name_mismatch", 0.08),
    ("dob_mismatch", 0.03),
    ("sanctions_hit", 0.03),
    ("sanctions_note", 0.01),
    ("pep", 0.04),
)
WATCHLIST_NAMES = ["Viktor Andreyev", "Dmitri Sokolov", "Hassan Al-Rahim"]


def kyc_event(rng: random.Random, number: int) -> DemoEvent:
    case = weighted(rng, KYC_CASES)
    watchlist = rng.choice(WATCHLIST_NAMES) if case == "sanctions_hit" else None
    if case == "clean_known":
        name, dob, doc_number, country, expiry, doc_type = rng.choice(KNOWN_APPLICANTS)
    else:
        name = watchlist or person_name(rng)
        dob = f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        doc_number = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(9))
        country = rng.choice(COUNTRIES)
        expiry = f"{rng.randint(2026, 2034)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        doc_type = rng.choice(["passport", "national_id", "driving_licence"])
    if case == "expired":
        expiry = f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    ocr_name, ocr_dob = name, dob
    if case == "name_mismatch":
        ocr_name = f"{rng.choice(FIRST_NAMES)} {name.split(' ', 1)[1]}"
    if case == "dob_mismatch":
        ocr_dob = f"{int(dob[:4]) + rng.choice([-1, 1])}{dob[4:]}"
    quality = {"blurry": "blurry", "cropped": "cropped"}.get(case, "good")
    notes = ""
    if case == "sanctions_note":
        notes = "Analyst: employer appears on the EU sanctions list; check before onboarding."
    elif case == "pep":
        notes = "Applicant declared a public office (member of a regional parliament)."
    elif rng.random() < 0.2:
        notes = rng.choice(["Second attempt after a failed upload.", "Applied via mobile app."])
    payload = {
        "application_id": f"APP-2025-{50000 + number}",
        "applicant": {
            "full_name": name,
            "date_of_birth": dob,
            "nationality": country,
            "email": email_for(rng, name),
            "phone": phone_number(rng),
            "pep": case == "pep",
        },
        "document": {
            "type": doc_type,
            "issuing_country": country,
            "image_quality": quality,
            "pages": 2 if doc_type == "national_id" else 1,
        },
        "ocr": {
            "full_name": ocr_name,
            "date_of_birth": ocr_dob,
            "document_number": doc_number,
            "country": country,
            "expiry_date": expiry,
            "mrz_valid": quality == "good",
            "confidence": round(rng.uniform(0.55, 0.8) if quality != "good" else 0.9, 2),
        },
        "checks": {
            "name_match": case != "name_mismatch",
            "dob_match": case != "dob_mismatch",
            "expired": case == "expired",
            "sanctions_screening": f"possible match: {watchlist}" if watchlist else "clear",
        },
        "notes": notes,
    }
    return DemoEvent(
        automation="kyc-document-triage",
        idempotency_key=f"demo-kyc-{number:05d}",
        segment=weighted(rng, KYC_SEGMENTS),
        source="onboarding-portal",
        payload=payload,
    )


# Refund requests ----------------------------------------------------------------------

REFUND_ISSUES = (
    ("not_delivered", 0.25),
    ("damaged", 0.25),
    ("late", 0.15),
    ("changed_mind", 0.30),
    ("used", 0.05),
)
PRODUCTS = [
    ("Trail running shoes", 129.0), ("Espresso grinder", 249.0), ("Linen duvet cover", 89.0),
    ("Noise-cancelling headphones", 299.0), ("Cast-iron skillet", 59.0), ("Desk lamp", 45.0),
]  # fmt: skip
REFUND_MESSAGES = {
    "not_delivered": "The tracking page says delivered but nothing arrived at my address.",
    "damaged": "The parcel arrived with the box crushed and the item is broken.",
    "late": "It arrived nine days after the promised date; I had to buy elsewhere.",
    "changed_mind": "I changed my mind and would like to return it, it is unopened.",
    "used": "Used it twice and do not like it, can I send it back?",
}


def refund_event(rng: random.Random, number: int) -> DemoEvent:
    issue = weighted(rng, REFUND_ISSUES)
    product, price = rng.choice(PRODUCTS)
    days = rng.randint(2, 60)
    name = person_name(rng)
    payload = {
        "order_id": f"WS-{700000 + number}",
        "customer": {"name": name, "email": email_for(rng, name)},
        "order": {
            "items": [{"product": product, "quantity": 1, "price_eur": price}],
            "total_eur": price,
            "delivered_days_ago": days,
            "within_return_window": days <= 30,
            "final_sale": rng.random() < 0.06,
            "issue": issue,
        },
        "message": REFUND_MESSAGES[issue],
    }
    return DemoEvent(
        automation="refund-eligibility",
        idempotency_key=f"demo-refund-{number:05d}",
        segment="",
        source="webshop",
        payload=payload,
    )


BUILDERS = {
    "support-triage": support_event,
    "kyc-document-triage": kyc_event,
    "refund-eligibility": refund_event,
}
