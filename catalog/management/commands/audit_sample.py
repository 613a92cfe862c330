"""Draw a stratified, reproducible audit sample of finished runs (contracts section 7)."""

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from catalog.audit.arguments import SampleInvalid, sample_arguments
from catalog.audit.report import stratum_label
from catalog.audit.sampling import NothingToSample, sample_draw, sample_summary

# The option each field of SampleInvalid comes from.
OPTIONS = {
    "name": "--name",
    "since": "--since",
    "until": "--until",
    "size": "--size/--rate",
    "rate": "--rate",
    "automation": "--automation",
    "outcome": "--outcome",
    "segment": "--segment",
    "stratify": "--stratify",
    "min_per_stratum": "--min-per-stratum",
    "seed": "--seed",
}


class Command(BaseCommand):
    help = (
        "Draw a sample of finished runs created in [--since, --until), stratified by outcome"
        " and segment (and automation when several), reproducible from its seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="what the sample is for (required)")
        parser.add_argument("--since", help="first day (YYYY-MM-DD) or date-time (required)")
        parser.add_argument("--until", help="day or date-time the window ends before (required)")
        parser.add_argument("--size", help="how many runs to draw (or --rate)")
        parser.add_argument("--rate", help="share of the runs to draw, in (0, 1] (or --size)")
        parser.add_argument(
            "--automation", action="append", metavar="SLUG", help="only this automation (repeat)"
        )
        parser.add_argument(
            "--outcome",
            action="append",
            help="only runs with this outcome (repeat): autonomous, approved, edited, rejected,"
            " blocked",
        )
        parser.add_argument("--segment", action="append", help="only this segment (repeat)")
        parser.add_argument(
            "--stratify", help='dimensions, comma-separated (default "outcome,segment")'
        )
        parser.add_argument(
            "--min-per-stratum", metavar="K", help="items every stratum gets at least (default 5)"
        )
        parser.add_argument("--seed", help="draw with this seed (default: a random one, printed)")
        parser.add_argument("--by", metavar="USERNAME", help="who draws it (compliance or admin)")
        parser.add_argument("--json", action="store_true", help="print the sample as JSON")

    def handle(self, *args, **options):
        try:
            arguments = sample_arguments(
                name=options["name"],
                since=options["since"],
                until=options["until"],
                size=options["size"],
                rate=options["rate"],
                automations=options["automation"],
                outcomes=options["outcome"],
                segments=options["segment"],
                stratify=options["stratify"],
                min_per_stratum=options["min_per_stratum"],
                seed=options["seed"],
            )
            sample = sample_draw(arguments=arguments, by=_user(options["by"]))
        except SampleInvalid as exc:
            lines = [f"{OPTIONS.get(f, f)}: {message}" for f, message in exc.errors.items()]
            raise CommandError("\n".join(lines)) from None
        except (NothingToSample, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        summary = sample_summary(sample)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            if not arguments.seed:
                self.stderr.write(f"seed chosen: {sample.seed}")
            return
        self._print(sample, summary)

    def _print(self, sample, summary: dict) -> None:
        strata = summary["strata"]
        population = sum(s["population"] for s in strata)
        self.stdout.write(
            f"sample {sample.pk} {sample.name!r}: seed {sample.seed}"
            f" (--seed {sample.seed} draws it again)"
        )
        width = max([len("stratum"), *(len(stratum_label(s["stratum"])) for s in strata)])
        self.stdout.write(f"{'stratum':<{width}}  {'population':>10}  {'sampled':>7}")
        for s in strata:
            label = stratum_label(s["stratum"])
            self.stdout.write(f"{label:<{width}}  {s['population']:>10,}  {s['sampled']:>7,}")
        self.stdout.write(
            f"{len(summary['items']):,} items from {population:,} runs in {len(strata)} strata"
        )


def _user(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--by: no user {username}")
    return user
