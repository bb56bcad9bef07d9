"""Generate keel's labelled PII corpus from presidio-evaluator's templates and identities.

Sentences come from presidio-evaluator 0.3.2's own generator (``PresidioSentenceFaker``), which
fills the templates in ``presidio_evaluator/data_generator/raw_data/templates.txt`` from its 3,000
synthetic identities (``FakeNameGenerator.com_3000.csv``) and from Faker providers for the values
the identities lack. It runs offline. Seeded, so the same command writes the same file.

Two kinds of rows:

* ``--n`` (default 3,000) sentences drawn uniformly from the package's templates (ids 0..n-1);
* a supplement (ids n..), written here for keel, in the same generator: the package templates
  hold only 3 IBAN and 2 SSN templates, too few for per-entity numbers on the checksum-validated
  kinds, so ``SUPPLEMENT_TEMPLATES`` below adds IBAN, US SSN, date-of-birth and IP address
  sentences (the package has 2 IP templates). Their IBANs come from several countries' Faker
  bank providers and are written either compact or in groups of four; SSNs are written with
  dashes, spaces or no separator.

Output is JSONL, one row per sentence::

    {"id": n, "text": ..., "spans": [{"type": T, "start": s, "end": e, "value": v}]}

with ``start``/``end`` UTF-8 byte offsets into ``text`` (the consumer is Rust) and ``T`` one of
keel's entity names (``email phone credit_card iban us_ssn ip_address date_of_birth person``) or,
for entities outside keel's scope, a lowercase name of its own (``TYPE_OF_TOKEN`` below).
A stats JSON beside the corpus (``*.stats.json``) counts spans per type and audits every
credit card (Luhn), IBAN (mod-97) and SSN (validity rules) in the corpus and in the identities.

Usage::

    PY=$(bench/pii/setup.sh | tail -1)
    $PY bench/pii/make_corpus.py [--n 3000] [--supplement 400] [--seed 42] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the package's progress bars
sys.path.insert(0, str(Path(__file__).resolve().parent))
from checksums import iban_valid, luhn_valid, ssn_valid  # noqa: E402

# Template token -> keel entity type. Tokens the package maps to PERSON, CREDIT_CARD, ... land on
# keel's names; the rest keep a lowercase name of their own so they are counted but out of scope.
TYPE_OF_TOKEN = {
    "person": "person",
    "name": "person",
    "name_male": "person",
    "name_female": "person",
    "first_name": "person",
    "first_name_male": "person",
    "first_name_female": "person",
    "first_name_nonbinary": "person",
    "last_name": "person",
    "last_name_male": "person",
    "last_name_female": "person",
    "email": "email",
    "phone_number": "phone",
    "credit_card_number": "credit_card",
    "iban": "iban",
    "ssn": "us_ssn",
    "ip_address": "ip_address",
    "date_of_birth": "date_of_birth",
    "date_time": "date",
    "day_of_week": "date",
    "year": "date",
    "address": "street_address",
    "street_name": "street_address",
    "building_number": "street_address",
    "secondary_address": "street_address",
    "postcode": "zip_code",
    "zipcode": "zip_code",
    "city": "location",
    "country": "location",
    "state": "location",
    "state_abbr": "location",
    "organization": "organization",
    "url": "url",
    "prefix": "title",
    "prefix_male": "title",
    "prefix_female": "title",
    "job": "job",
    "nationality": "nrp",
    "nation_woman": "nrp",
    "nation_man": "nrp",
    "nation_plural": "nrp",
    "age": "age",
    "us_driver_license": "us_driver_license",
}

# Out-of-scope kinds whose neighbouring placeholders form one entity (see merge_adjacent).
MERGE_TYPES = {"street_address", "location"}

# Package templates whose {{date_of_birth}} is not a birth date in context: labelled `date`.
NOT_A_BIRTH_DATE = {"It's like that since {{date_of_birth}}"}

# Written for keel (not from the package): sentences around the checksum-validated kinds and
# dates of birth, filled by the same generator. `{{iban}}`/`{{ssn}}` use the providers below.
SUPPLEMENT_TEMPLATES = [
    "Please send the refund to my account {{iban}}, the name on it is {{person}}.",
    "The rent goes to IBAN {{iban}} on the first of each month.",
    "I made a transfer to {{iban}} yesterday but it has not arrived yet.",
    "Can you confirm that {{iban}} is the right account for invoice payments?",
    "Our supplier changed their bank details to {{iban}}, please update the vendor record.",
    "my iban is {{iban}} and my email is {{email}}",
    "Beneficiary: {{person}}, IBAN: {{iban}}, reference: order 5531",
    "Why was the direct debit from {{iban}} rejected?",
    "Hi, I'm {{first_name}}. My salary account is {{iban}}, can you close it?",
    "Wire the deposit to {{organization}} at {{iban}} before Friday.",
    "My social security number is {{ssn}} and I need a copy of my tax form.",
    "SSN: {{ssn}}",
    "The employee {{person}} entered {{ssn}} as her SSN on the onboarding form.",
    "Could you update my records? The correct SSN is {{ssn}}, not the one on file.",
    "I think someone is using my social security number {{ssn}} to open accounts.",
    "For the background check we need your SSN ({{ssn}}) and date of birth ({{date_of_birth}}).",
    "Applicant {{person}}, social {{ssn}}, phone {{phone_number}}",
    "He read out his ssn {{ssn}} over the phone.",
    "Patient {{person}}, DOB {{date_of_birth}}, was admitted this morning.",
    "My date of birth is {{date_of_birth}}, please fix it in my profile.",
    "I was born on {{date_of_birth}} in {{city}}.",
    "Date of birth: {{date_of_birth}}",
    "The passport lists her birthday as {{date_of_birth}}.",
    "Can you verify the account holder? Name {{person}}, born {{date_of_birth}}.",
    "The login attempts all came from {{ip_address}} between 2 and 3 am.",
    "Please whitelist {{ip_address}} for the VPN, it is my home office.",
    "server log: connection refused for client {{ip_address}} (user {{email}})",
    "Is {{ip_address}} one of your data centre addresses? It keeps scanning our ports.",
]

# Bounds for generated dates and times (other than birth dates, which come from the identities).
EPOCH_START = datetime.datetime(1970, 1, 1)
EPOCH_END = datetime.datetime(2025, 12, 31)

# Share of sentences written all lowercase (the package's default ratio).
LOWER_CASE_RATIO = 0.05

# Countries whose Faker locale has a bank provider producing valid IBANs of that country.
IBAN_LOCALES = [
    "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "en_GB", "de_CH", "pl_PL", "fi_FI", "de_AT",
    "nl_BE", "pt_PT",
]


def default_out() -> Path:
    cache = os.environ.get("KEEL_CACHE_DIR") or str(Path.home() / ".cache" / "keel")
    return Path(cache) / "bench" / "pii_corpus.jsonl"


def byte_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Char offsets -> UTF-8 byte offsets."""
    b0 = len(text[:start].encode("utf-8"))
    return b0, b0 + len(text[start:end].encode("utf-8"))


def make_faker(templates: list[str], seed: int, supplement: bool):
    from faker import Faker
    from faker.providers import BaseProvider
    from presidio_evaluator.data_generator import PresidioSentenceFaker

    from presidio_evaluator.data_generator.presidio_sentence_faker import (
        presidio_additional_entity_providers,
    )

    # HospitalProvider tries to download a list at construction; no template uses it.
    providers = [p for p in presidio_additional_entity_providers if p.__name__ != "HospitalProvider"]
    from presidio_evaluator.data_generator.faker_extensions.datasets import load_fake_person_df

    mapping = {token: token for token in TYPE_OF_TOKEN}  # keep tokens; mapped below
    # The identities' full names draw middle initials from `random` while loading, before the
    # package seeds it: seed first so the corpus is the same on every run.
    random.seed(seed)
    Faker.seed(seed)
    # Missing cells (e.g. a state abbreviation) would be written as "nan": drop them from each
    # identity so the generator falls back to Faker for that field.
    records = [
        {k: v for k, v in rec.items() if not (isinstance(v, float) and math.isnan(v))}
        for rec in load_fake_person_df().to_dict(orient="records")
    ]
    sf = PresidioSentenceFaker(
        locale="en_US",
        lower_case_ratio=0.0,  # the package lowercases values but not the text: done here instead
        sentence_templates=templates,
        entity_providers=providers,
        base_records=records,
        entity_type_mapping=mapping,
        random_seed=seed,
    )

    class FixedClockProvider(BaseProvider):
        """Faker's date_time/year/day_of_week draw relative to now: use fixed bounds instead."""

        def date_time(self) -> datetime.datetime:
            return self.generator.date_time_between(start_date=EPOCH_START, end_date=EPOCH_END)

        def year(self) -> str:
            return self.date_time().strftime("%Y")

        def day_of_week(self) -> str:
            return self.date_time().strftime("%A")

    sf.add_provider(FixedClockProvider)
    if supplement:
        rng = random.Random(seed)
        fakers = {loc: Faker(loc) for loc in IBAN_LOCALES}
        for i, f in enumerate(fakers.values()):
            f.seed_instance(seed + i)
        us = Faker("en_US")
        us.seed_instance(seed)

        class SupplementProvider(BaseProvider):
            def iban(self) -> str:
                value = fakers[rng.choice(IBAN_LOCALES)].iban()
                if rng.random() < 0.5:
                    value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
                return value

            def ssn(self) -> str:
                value = us.ssn()
                r = rng.random()
                if r < 0.2:
                    value = value.replace("-", " ")
                elif r < 0.4:
                    value = value.replace("-", "")
                return value

        sf.add_provider(SupplementProvider)
    return sf


def rows_from(samples, first_id: int, seed: int, problems: Counter):
    lower = random.Random(seed)
    for k, sample in enumerate(samples):
        text = sample.full_text
        # As the package intends (lower_case_ratio 0.05): some sentences all lowercase.
        lowered = lower.random() < LOWER_CASE_RATIO and len(text.lower()) == len(text)
        if lowered:
            text = text.lower()
        spans = []
        for sp in sorted(sample.spans, key=lambda s: s.start_position):
            token = sp.entity_type
            typ = TYPE_OF_TOKEN.get(token)
            if typ is None:
                problems[f"unmapped token {token}"] += 1
                typ = token.lower()
            if token == "date_of_birth" and sample.masked in NOT_A_BIRTH_DATE:
                typ = "date"
            s, e = sp.start_position, sp.end_position
            value = str(sp.entity_value).lower() if lowered else str(sp.entity_value)
            if text[s:e] != value:
                problems["span text != value (span dropped)"] += 1
                continue
            if s == e:
                problems["empty value (span dropped)"] += 1
                continue
            b0, b1 = byte_span(text, s, e)
            spans.append({"type": typ, "start": b0, "end": b1, "value": value})
        yield {"id": first_id + k, "text": text, "spans": merge_adjacent(text, spans)}


def merge_adjacent(text: str, spans: list[dict]) -> list[dict]:
    """Join a building number and street name ("12" "Main St"), or a city and its state, that the
    templates fill as neighbouring placeholders separated by one space: one entity in the text."""
    raw = text.encode("utf-8")
    out: list[dict] = []
    for sp in spans:
        prev = out[-1] if out else None
        if (
            prev is not None
            and sp["type"] == prev["type"]
            and sp["type"] in MERGE_TYPES
            and raw[prev["end"] : sp["start"]] == b" "
        ):
            prev["end"] = sp["end"]
            prev["value"] = raw[prev["start"] : sp["end"]].decode("utf-8")
        else:
            out.append(dict(sp))
    return out


def audit_corpus(rows) -> dict:
    checks = {"credit_card": luhn_valid, "iban": iban_valid, "us_ssn": ssn_valid}
    out = {}
    for typ, ok in checks.items():
        values = [sp["value"] for r in rows for sp in r["spans"] if sp["type"] == typ]
        bad = [v for v in values if not ok(v)]
        out[typ] = {"count": len(values), "failing": len(bad), "failing_examples": bad[:5]}
    return out


def audit_identities() -> dict:
    import csv

    from presidio_evaluator.data_generator import raw_data_dir

    path = raw_data_dir / "FakeNameGenerator.com_3000.csv"
    with open(path, encoding="utf-8-sig", newline="") as f:
        people = list(csv.DictReader(f))
    cards = [p["CCNumber"] for p in people]
    digits_only = [c for c in cards if c.isdigit()]
    us_ids = [p["NationalID"] for p in people if p["Country"] == "US" and p["NationalID"]]
    return {
        "identities": len(people),
        "credit_card_values": len(cards),
        "credit_card_not_plain_digits": len(cards) - len(digits_only),
        "credit_card_examples": cards[:3],
        "credit_card_luhn_failing": sum(1 for c in digits_only if not luhn_valid(c)),
        "us_national_ids": len(us_ids),
        "us_national_ids_failing_ssn_rules": sum(1 for v in us_ids if not ssn_valid(v)),
        "note": "the package drops CCNumber (spreadsheet-mangled to scientific notation) and "
        "draws card numbers from Faker; the identities have no IBAN or SSN column used by the "
        "templates, so {{iban}} and {{ssn}} also come from Faker",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="sentences from the package templates")
    ap.add_argument("--supplement", type=int, default=400, help="sentences from keel's templates")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=default_out())
    args = ap.parse_args()

    from presidio_evaluator.data_generator.presidio_sentence_faker import (
        presidio_templates_file_path,
    )

    templates = [
        line.strip().replace("\\n", "\n")
        for line in presidio_templates_file_path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    problems: Counter = Counter()
    quiet = open(os.devnull, "w")  # the package prints progress and notes on stdout
    stdout, sys.stdout = sys.stdout, quiet
    try:
        main_faker = make_faker(templates, args.seed, supplement=False)
        rows = list(
            rows_from(main_faker.generate_new_fake_sentences(args.n), 0, args.seed, problems)
        )
        if args.supplement:
            sup_faker = make_faker(SUPPLEMENT_TEMPLATES, args.seed + 1, supplement=True)
            samples = sup_faker.generate_new_fake_sentences(args.supplement)
            rows += list(rows_from(samples, args.n, args.seed + 1, problems))
    finally:
        sys.stdout = stdout
        quiet.close()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    per_type = Counter(sp["type"] for r in rows for sp in r["spans"])
    stats = {
        "sentences": len(rows),
        "from_package_templates": args.n,
        "from_keel_supplement": len(rows) - args.n,
        "package_templates": len(templates),
        "supplement_templates": len(SUPPLEMENT_TEMPLATES),
        "seed": args.seed,
        "sentences_without_spans": sum(1 for r in rows if not r["spans"]),
        "spans_per_type": dict(per_type.most_common()),
        "supplement_spans_per_type": dict(
            Counter(sp["type"] for r in rows[args.n :] for sp in r["spans"]).most_common()
        ),
        "generation_problems": dict(problems),
        "checksums_in_corpus": audit_corpus(rows),
        "checksums_in_identities": audit_identities(),
    }
    stats_path = args.out.with_suffix(".stats.json")
    stats_path.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(stats, indent=2, ensure_ascii=False))
    print(f"wrote {len(rows)} sentences to {args.out} and stats to {stats_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
