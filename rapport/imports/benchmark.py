"""Import benchmark: a generated people CSV through the real pipeline into the configured
database.

The file is deterministic for a given row count: about 2 % of rows repeat an earlier email
(in another case, with another phone) and about 1.5 % repeat an earlier person's name with a
typo at the same company and no email, which only the fuzzy matcher finds. Duplicates are
merged. Run it with:

    rapport bench import --rows 1000000   (runs in a fresh scratch database)
"""

import random
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from rapport.core.text import fold

FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Mia",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zoë",
    "Jürgen",
    "Søren",
    "Ana",
    "Luca",
]
LAST = [
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Nowak",
    "Jensen",
    "Kowalski",
    "Silva",
    "Novak",
    "Larsen",
    "Moreau",
    "Schmidt",
    "Bianchi",
    "Santos",
    "Horvat",
    "Nilsen",
    "Fischer",
    "Martin",
    "Costa",
    "Weber",
    "Romano",
    "Lefebvre",
    "Berg",
    "Kuznetsova",
    "O'Brien",
    "Van Dijk",
    "Andersson",
    "Petrov",
    "Ito",
]
TITLES = ["CEO", "CTO", "Head of Sales", "Engineer", "Buyer", "Marketing Manager", "Analyst", ""]
CITIES = [
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("London", "GB"),
    ("Madrid", "ES"),
    ("Rome", "IT"),
    ("Oslo", "NO"),
]
HEADER = ["First name", "Last name", "Email", "Phone", "Company", "Job title", "Tags", "City", "Country"]


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def generate(path: Path, rows: int, seed: int = 42) -> dict[str, int]:
    """Write the CSV; returns how many exact and fuzzy duplicates it holds."""
    import csv

    rng = random.Random(seed)
    companies = max(rows // 40, 10)
    exact = fuzzy = 0
    recent: list[list[str]] = []
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(rows):
            roll = rng.random()
            if recent and roll < 0.02:
                src = recent[rng.randrange(len(recent))]
                row = [src[0], src[1], src[2].upper(), "", src[4], src[5], "imported-again", src[7], src[8]]
                exact += 1
            elif recent and roll < 0.035:
                src = recent[rng.randrange(len(recent))]
                row = [src[0], _typo(rng, src[1]), "", "", src[4], "", "", "", ""]
                fuzzy += 1
            else:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                company = f"Company {rng.randrange(companies):06d}"
                email = f"{fold(first).replace('ø', 'o')}.{i}@c{rng.randrange(companies)}.example"
                phone = (
                    f"+44 20 7{rng.randrange(1000):03d} {rng.randrange(10000):04d}"
                    if rng.random() < 0.4
                    else ""
                )
                city, country = rng.choice(CITIES)
                tags = "customer" if rng.random() < 0.3 else ""
                row = [first, last, email, phone, company, rng.choice(TITLES), tags, city, country]
                if rng.random() < 0.005:
                    row[2] = row[2].replace("@", " at ")  # an invalid email: a row error, not an abort
                recent.append(row)
                if len(recent) > 5000:
                    recent.pop(rng.randrange(len(recent)))
            w.writerow(row)
    return {"exact_duplicates": exact, "fuzzy_duplicates": fuzzy}


def _bench_user() -> Any:
    from rapport.accounts.models import Role, Team, User

    team, _ = Team.objects.get_or_create(name="Bench")
    user, created = User.objects.get_or_create(username="bench-import", defaults={"role": Role.SALES})
    if created:
        user.set_unusable_password()
        user.save()
        user.teams.add(team)
    return user


class Writer(Protocol):
    """A text stream or a management command's `self.stdout` (an OutputWrapper)."""

    def write(self, text: str, /) -> Any: ...


def run(*, rows: int, stdout: Writer, dry_run: bool = False, keep_file: Path | None = None) -> dict[str, Any]:
    """Generate `rows` people, import them (duplicates merged) and return the figures.

    `seconds` is the import alone (the background task's work: read, validate, match, write,
    commit); generating the file and the upload step are reported separately."""
    from rapport.imports import actions
    from rapport.imports.models import ImportJob, ImportStatus

    user = _bench_user()
    with tempfile.TemporaryDirectory() as tmp:
        path = keep_file or Path(tmp) / "people.csv"
        t0 = time.monotonic()
        dupes = generate(path, rows)
        stdout.write(f"generated {rows:,} rows in {time.monotonic() - t0:.1f} s ({dupes})\n")
        t0 = time.monotonic()
        with path.open("rb") as f:
            job = actions.job_create(
                actor=user,
                kind="people",
                chunks=iter(lambda: f.read(1024 * 1024), b""),
                original_name="bench.csv",
            )
        upload_s = time.monotonic() - t0
        job.on_duplicate = "merge"
        job.visibility = "team"
        job.save()
        figures: dict[str, Any] = {"rows": rows, "upload_seconds": round(upload_s, 2), **dupes}
        if dry_run:
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.ANALYSING)
            t0 = time.monotonic()
            actions.job_analyse(job_id=job.pk)
            figures["dry_run_seconds"] = round(time.monotonic() - t0, 2)
            job.refresh_from_db()
            stdout.write(
                f"dry run: {figures['dry_run_seconds']} s, new {job.dry_new:,}, duplicates {job.dry_duplicate:,}\n"
            )
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
        t0 = time.monotonic()
        actions.job_execute(job_id=job.pk)
        seconds = time.monotonic() - t0
    job.refresh_from_db()
    if job.status != ImportStatus.DONE:
        raise RuntimeError(f"benchmark import failed: {job.error}")
    figures.update(
        seconds=round(seconds, 2),
        rows_per_s=round(rows / seconds) if seconds else None,
        created=job.created,
        merged_or_skipped=job.merged + job.skipped,
        failed=job.failed,
        job_id=job.pk,
    )
    stdout.write(
        f"imported {rows:,} rows in {seconds:.1f} s ({figures['rows_per_s']:,} rows/s): "
        f"{job.created:,} created, {job.merged:,} merged, {job.skipped:,} skipped, {job.failed:,} failed\n"
    )
    return figures
