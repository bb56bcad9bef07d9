"""Tests of the PII benchmark's own logic: scoring rules, checksums, byte offsets, span merging.

Standard library only (no venv needed): ``python3 -m unittest discover -s bench/pii``.
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checksums import iban_valid, luhn_valid, ssn_valid  # noqa: E402
from make_corpus import byte_span, merge_adjacent  # noqa: E402
from presidio_run import to_bytes  # noqa: E402
from score import exact_match, relaxed_match, score  # noqa: E402


def span(t, s, e):
    return {"type": t, "start": s, "end": e}


class MatchRules(unittest.TestCase):
    def test_relaxed_needs_half_of_the_gold_span(self):
        gold = span("person", 10, 20)
        self.assertTrue(relaxed_match(gold, span("person", 15, 30)))  # 5 of 10 bytes
        self.assertFalse(relaxed_match(gold, span("person", 16, 30)))  # 4 of 10 bytes
        self.assertTrue(relaxed_match(gold, span("person", 0, 40)))  # covers all of it
        self.assertFalse(relaxed_match(gold, span("location", 10, 20)))  # other type
        self.assertFalse(relaxed_match(gold, span("person", 20, 25)))  # touching, no overlap

    def test_exact_needs_same_bounds(self):
        gold = span("email", 3, 17)
        self.assertTrue(exact_match(gold, span("email", 3, 17)))
        self.assertFalse(exact_match(gold, span("email", 3, 18)))
        self.assertFalse(exact_match(gold, span("phone", 3, 17)))


class Scoring(unittest.TestCase):
    corpus = [
        {"id": 0, "text": "", "spans": [span("email", 0, 10), span("person", 20, 30)]},
        {"id": 1, "text": "", "spans": [span("iban", 5, 27)]},
        {"id": 2, "text": "", "spans": []},
    ]

    def test_counts_precision_recall_and_missing_rows(self):
        preds = [
            {"id": 0, "spans": [span("email", 0, 10), span("person", 22, 40), span("phone", 50, 60)]},
            {"id": 2, "spans": [span("iban", 0, 22)]},
        ]
        r = score(self.corpus, preds)
        self.assertEqual(r["missing_predictions"], 1)
        rel = r["relaxed"]["per_type"]
        self.assertEqual((rel["email"]["precision"], rel["email"]["recall"]), (1.0, 1.0))
        self.assertEqual((rel["person"]["found"], rel["person"]["correct"]), (1, 1))
        self.assertEqual(rel["iban"]["recall"], 0.0)  # row 1 had no predictions
        self.assertEqual(rel["iban"]["precision"], 0.0)  # the iban predicted in row 2 is wrong
        self.assertEqual(rel["phone"]["gold"], 0)
        self.assertIsNone(rel["phone"]["recall"])
        exa = r["exact"]["per_type"]
        self.assertEqual(exa["person"]["found"], 0)  # 22..40 is not 20..30
        micro = r["relaxed"]["micro_keel"]
        self.assertEqual((micro["gold"], micro["found"]), (3, 2))  # email, person, iban
        self.assertEqual((micro["predicted"], micro["correct"]), (4, 2))

    def test_one_wide_prediction_finds_two_golds_but_counts_once(self):
        corpus = [{"id": 0, "text": "", "spans": [span("person", 0, 4), span("person", 5, 10)]}]
        r = score(corpus, [{"id": 0, "spans": [span("person", 0, 10)]}])
        per = r["relaxed"]["per_type"]["person"]
        self.assertEqual((per["found"], per["gold"], per["correct"], per["predicted"]), (2, 2, 1, 1))


class Checksums(unittest.TestCase):
    def test_luhn(self):
        self.assertTrue(luhn_valid("4111 1111 1111 1111"))
        self.assertTrue(luhn_valid("2223000048400011"))  # 2-series Mastercard
        self.assertFalse(luhn_valid("4111 1111 1111 1112"))
        self.assertFalse(luhn_valid("5.54563E+15"))  # how the identities file stores cards

    def test_iban(self):
        self.assertTrue(iban_valid("GB82 WEST 1234 5698 7654 32"))
        self.assertTrue(iban_valid("es9121000418450200051332"))
        self.assertFalse(iban_valid("ES9121000418450200051333"))
        self.assertFalse(iban_valid("ES91"))

    def test_ssn_rules(self):
        for ok in ("123-45-6789", "123 45 6789", "123456789", "899-99-9999"):
            self.assertTrue(ssn_valid(ok), ok)
        for bad in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000",
                    "123-456789", "12-345-6789"):
            self.assertFalse(ssn_valid(bad), bad)


class Offsets(unittest.TestCase):
    def test_char_to_byte_offsets(self):
        text = "Zoë Müller, zoe@example.com"
        s = text.index("zoe@")
        b0, b1 = byte_span(text, s, len(text))
        self.assertEqual(text.encode()[b0:b1].decode(), "zoe@example.com")
        self.assertEqual((b0, b1), (s + 2, len(text) + 2))  # ë and ü take two bytes each
        at = to_bytes(text)
        self.assertEqual((at(0), at(3), at(s)), (0, 4, s + 2))

    def test_merge_adjacent_street_parts_only(self):
        text = "12 Main St, Springfield IL. Ann Bo"
        raw = text.encode()

        def sp(t, v, start=0):
            s = raw.index(v.encode(), start)
            return {"type": t, "start": s, "end": s + len(v.encode()), "value": v}

        merged = merge_adjacent(text, [
            sp("street_address", "12"), sp("street_address", "Main St"),
            sp("location", "Springfield"), sp("location", "IL"),
            sp("person", "Ann"), sp("person", "Bo"),
        ])
        self.assertEqual([(m["type"], m["value"]) for m in merged], [
            ("street_address", "12 Main St"), ("location", "Springfield IL"),
            ("person", "Ann"), ("person", "Bo"),  # two names stay two
        ])


if __name__ == "__main__":
    unittest.main()
