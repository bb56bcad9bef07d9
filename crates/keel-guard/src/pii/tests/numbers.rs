//! Number-shaped entities: cards, IBANs, SSNs, phones, with their near misses.

use super::{found, scanner, score_of, spans_of};

#[test]
fn credit_cards_need_luhn_and_a_known_issuer() {
    for (t, span) in [
        ("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
        ("4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("pay with 5500005555555559 now", "5500005555555559"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("discover 6011111111111117.", "6011111111111117"),
        ("mc 2221000000000009", "2221000000000009"),
        ("jcb 3530111333300000", "3530111333300000"),
    ] {
        assert_eq!(spans_of(t, "credit_card"), [span], "{t}");
    }
    assert!(
        score_of(
            "my card is 4111 1111 1111 1111",
            "credit_card",
            "4111 1111 1111 1111"
        ) >= 0.95
    );
    assert!(score_of("4111111111111111", "credit_card", "4111111111111111") >= 0.9);
}

#[test]
fn ibans_need_the_country_length_and_mod97() {
    for (t, span) in [
        (
            "IBAN DE89 3704 0044 0532 0130 00 please",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("GB82WEST12345698765432", "GB82WEST12345698765432"),
        (
            "send to FR1420041010050500013M02606.",
            "FR1420041010050500013M02606",
        ),
        ("NL91ABNA0417164300", "NL91ABNA0417164300"),
        ("pay DE89370400440532013000 TODAY", "DE89370400440532013000"),
    ] {
        assert_eq!(spans_of(t, "iban"), [span], "{t}");
    }
    assert!(score_of("GB82WEST12345698765432", "iban", "GB82WEST12345698765432") >= 0.9);
    for t in [
        "DE89 3704 0044 0532 0130 01", // check digits wrong
        "DE8937040044053201300",       // one short for DE
        "XX89370400440532013000",      // unknown country
        "GB82WEST123456987654321",     // one too long
    ] {
        assert!(spans_of(t, "iban").is_empty(), "{t}");
    }
}

#[test]
fn ssns_follow_the_validity_rules() {
    assert_eq!(spans_of("SSN: 536-22-1234.", "us_ssn"), ["536-22-1234"]);
    assert_eq!(spans_of("it is 536-22-1234", "us_ssn"), ["536-22-1234"]);
    assert!(score_of("ssn 536-22-1234", "us_ssn", "536-22-1234") >= 0.9);
    assert_eq!(
        spans_of("my social security number is 536221234", "us_ssn"),
        ["536221234"]
    );
    assert_eq!(spans_of("SSN 536 22 1234", "us_ssn"), ["536 22 1234"]);
    for t in [
        "536221234",          // no dashes, no context
        "000-12-3456",        // area 000
        "666-12-3456",        // area 666
        "912-12-3456",        // area 9xx
        "536-00-1234",        // group 00
        "536-22-0000",        // serial 0000
        "078-05-1120",        // the Woolworth number
        "part 536-22-1234-7", // part of a longer id
        "ssn 536-221-234",    // wrong grouping
    ] {
        assert!(spans_of(t, "us_ssn").is_empty(), "{t}");
    }
}

#[test]
fn phones_in_international_and_national_formats() {
    for (t, span) in [
        ("call +1 415-555-0132 today", "+1 415-555-0132"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("+44 (0) 20 7946 0958", "+44 (0) 20 7946 0958"),
        ("Tel. 0049 30 12345678", "0049 30 12345678"),
        ("(415) 555-0132", "(415) 555-0132"),
        ("415.555.0132", "415.555.0132"),
        ("1-800-555-0199", "1-800-555-0199"),
        ("ring 020 7946 0958 after 5", "020 7946 0958"),
        ("appelez le 01 23 45 67 89", "01 23 45 67 89"),
        ("+33612345678", "+33612345678"),
        ("415-555-0132 x123", "415-555-0132 x123"),
    ] {
        assert_eq!(spans_of(t, "phone"), [span], "{t}");
    }
    assert_eq!(spans_of("phone: 4155550132", "phone"), ["4155550132"]);
    assert!(
        score_of("call me at 415-555-0132", "phone", "415-555-0132")
            > score_of("415-555-0132", "phone", "415-555-0132")
    );
}

#[test]
fn short_maestro_and_jcb_15_cards() {
    // 12-digit Maestro: only with a card word nearby (12-digit ids are everywhere).
    assert_eq!(
        spans_of("block card no 501803075628", "credit_card"),
        ["501803075628"]
    );
    assert!(spans_of("invoice 501803075628", "credit_card").is_empty());
    // 15-digit JCB (1800 / 2131 prefixes) and 16-digit JCB (35).
    assert_eq!(
        spans_of("card 180077496499096", "credit_card"),
        ["180077496499096"]
    );
    assert_eq!(
        spans_of("3527875588675333", "credit_card"),
        ["3527875588675333"]
    );
    assert!(
        spans_of("card 180077496499097", "credit_card").is_empty(),
        "Luhn fails"
    );
}

#[test]
fn lowercased_ibans_are_found_but_mixed_case_is_not() {
    assert_eq!(
        spans_of("iban de89 3704 0044 0532 0130 00 ok", "iban"),
        ["de89 3704 0044 0532 0130 00"]
    );
    assert_eq!(
        spans_of("to gb82west12345698765432.", "iban"),
        ["gb82west12345698765432"]
    );
    assert!(spans_of("De89370400440532013000", "iban").is_empty());
    assert!(
        spans_of("de89370400440532013001", "iban").is_empty(),
        "mod-97 fails"
    );
}

#[test]
fn national_numbers_that_are_not_nanp() {
    // Starts like NANP (3-3-4) but with a trunk 0: a national number.
    assert_eq!(
        spans_of("You can call 044 876 0371", "phone"),
        ["044 876 0371"]
    );
    // Other groupings need a phone word nearby.
    assert_eq!(
        spans_of("They're not answering at 695 203 391", "phone"),
        ["695 203 391"]
    );
    assert!(spans_of("batch 695 203 391 shipped", "phone").is_empty());
    // After a comma (a list of numbers in a signature).
    assert_eq!(
        spans_of("(73) 4746-3459-Office,781-618-4959-Fax", "phone"),
        ["(73) 4746-3459", "781-618-4959"]
    );
}

#[test]
fn card_near_misses_are_not_reported() {
    for t in [
        "card 4111 1111 1111 1112", // Luhn fails
        "0000 0000 0000 0000",      // Luhn passes, no issuer
        "order 1234567812345670",   // Luhn passes, no issuer (prefix 1)
        "4111 1111-1111 1111",      // mixed separators
        "41111111111111111111111",  // too long
        "ref 79927398713",          // Luhn passes but 11 digits
    ] {
        assert!(spans_of(t, "credit_card").is_empty(), "{t}");
    }
}

#[test]
fn phone_near_misses_are_not_reported() {
    for t in [
        "order 4155550132 shipped", // unseparated digits without context
        "on 2023-01-15 at noon",    // ISO date
        "on 01.02.2023",            // European date
        "cost $1,234,567.89",       // price
        "ISBN 978-3-16-148410-0",   // ISBN
        "version 10.2.3.4",         // version
        "415-055-0132",             // exchange starts with 0
        "155-555-0132",             // area starts with 1
        "ids 12345 67890 12345",    // arbitrary grouping
        "+0 123 456 789",           // no country code 0
        "total 3.14159265",         // a number
    ] {
        assert!(
            spans_of(t, "phone").is_empty(),
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
}

#[test]
fn phones_next_to_an_unrelated_number() {
    assert_eq!(
        spans_of("since 2019 415-555-0132 is my line", "phone"),
        ["415-555-0132"]
    );
    assert_eq!(
        spans_of("call 020 7946 0958 2024 edition", "phone"),
        ["020 7946 0958"]
    );
    assert!(spans_of("codes 12345 67890 12345 11", "phone").is_empty());
}
