"""A sample's report (contracts section 7): per stratum and overall, as JSON, CSV and a chart.

Per stratum: population, sampled, reviewed (items with a verdict), issues,
the issue rate among the reviewed and its Wilson 95% interval.

Overall, weighted by population (a stratified estimate): the rate is
sum(N_h * p_h) / sum(N_h) over the strata with reviews, N_h a stratum's
population and p_h its issue rate. Its bounds are the population-weighted
Wilson bounds of every stratum, a stratum without reviews counting as
[0, 1]: a conservative interval, and one that says so when part of the
population has not been looked at yet.
"""

import csv
import io
from dataclasses import dataclass

from django.db.models import Count, Q

from catalog.audit.sampling import seed_json
from catalog.models import AuditSample, AuditVerdict
from catalog.stats import wilson_interval

FIGURES = ("population", "sampled", "reviewed", "issues", "issue_rate", "wilson_low", "wilson_high")


@dataclass(frozen=True)
class Row:
    stratum: dict
    population: int
    sampled: int
    reviewed: int
    issues: int

    @property
    def issue_rate(self) -> float | None:
        return self.issues / self.reviewed if self.reviewed else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.issues, self.reviewed)


@dataclass(frozen=True)
class Overall:
    population: int
    sampled: int
    reviewed: int
    issues: int
    issue_rate: float | None
    interval: tuple[float, float]


def figures(row: Row | Overall) -> dict:
    """A row's (or the overall) figures by the names the JSON and the CSV use."""
    low, high = row.interval
    return {
        "population": row.population,
        "sampled": row.sampled,
        "reviewed": row.reviewed,
        "issues": row.issues,
        "issue_rate": row.issue_rate,
        "wilson_low": low,
        "wilson_high": high,
    }


@dataclass(frozen=True)
class Report:
    sample: AuditSample
    dimensions: tuple[str, ...]
    rows: list[Row]
    overall: Overall


def _overall(rows: list[Row]) -> Overall:
    population = sum(row.population for row in rows)
    reviewed_rows = [row for row in rows if row.reviewed]
    weight = sum(row.population for row in reviewed_rows)
    rate = (
        sum(row.population * row.issue_rate for row in reviewed_rows) / weight if weight else None
    )
    if population:
        low = sum(row.population * row.interval[0] for row in rows) / population
        high = sum(row.population * row.interval[1] for row in rows) / population
    else:
        low, high = 0.0, 1.0
    return Overall(
        population=population,
        sampled=sum(row.sampled for row in rows),
        reviewed=sum(row.reviewed for row in rows),
        issues=sum(row.issues for row in rows),
        issue_rate=rate,
        interval=(max(0.0, low), min(1.0, high)),
    )


def sample_report(sample: AuditSample) -> Report:
    """The report's figures, in one query over the sample's strata."""
    strata = sample.strata.order_by("position").annotate(
        sampled=Count("items"),
        reviewed=Count("items", filter=~Q(items__verdict="")),
        issues=Count("items", filter=Q(items__verdict=AuditVerdict.ISSUE)),
    )
    rows = [
        Row(
            stratum=s.key,
            population=s.population,
            sampled=s.sampled,
            reviewed=s.reviewed,
            issues=s.issues,
        )
        for s in strata
    ]
    dimensions = tuple(dict.fromkeys(key for row in rows for key in row.stratum))
    return Report(sample=sample, dimensions=dimensions, rows=rows, overall=_overall(rows))


def report_json(report: Report) -> dict:
    """The report as JSON: one entry per stratum, then the weighted overall figures."""
    sample = report.sample
    return {
        "sample_id": sample.pk,
        "name": sample.name,
        "seed": seed_json(sample.seed),
        "strata": [{"stratum": row.stratum, **figures(row)} for row in report.rows],
        "overall": figures(report.overall),
    }


def stratum_label(stratum: dict) -> str:
    """A stratum as one short text: "outcome=approved, segment=enterprise"."""
    if not stratum:
        return "all runs"
    return ", ".join(
        f"{key}={value if value != '' else '(none)'}" for key, value in stratum.items()
    )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def report_csv(report: Report) -> str:
    """The report as CSV: a header, one row per stratum, then the row "overall"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["stratum", *report.dimensions, *FIGURES])
    for row in report.rows:
        shown = figures(row)
        writer.writerow(
            [
                stratum_label(row.stratum),
                *(row.stratum.get(d, "") for d in report.dimensions),
                *(_cell(shown[f]) for f in FIGURES),
            ]
        )
    shown = figures(report.overall)
    writer.writerow(
        ["overall", *("" for _ in report.dimensions), *(_cell(shown[f]) for f in FIGURES)]
    )
    return out.getvalue()
