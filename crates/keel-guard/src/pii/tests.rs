use super::*;
use crate::scan::GuardStage;

fn scanner() -> PiiScanner {
    PiiScanner::new(&PiiConfig::default()).unwrap()
}

/// (kind, matched text, score) of every finding.
fn found(s: &PiiScanner, text: &str) -> Vec<(String, String, f32)> {
    let scan = s.scan(&ScanInput::text(text, GuardStage::Input)).unwrap();
    scan.findings
        .iter()
        .map(|f| (f.kind.clone(), text[f.start..f.end].to_string(), f.score))
        .collect()
}

fn spans_of(text: &str, kind: &str) -> Vec<String> {
    found(&scanner(), text)
        .into_iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, s, _)| s)
        .collect()
}

fn score_of(text: &str, kind: &str, span: &str) -> f32 {
    found(&scanner(), text)
        .into_iter()
        .find(|(k, s, _)| k == kind && s == span)
        .map(|(_, _, sc)| sc)
        .unwrap_or_else(|| panic!("no {kind} {span:?} in {text:?}"))
}

#[test]
fn emails_are_found_with_exact_spans() {
    assert_eq!(
        spans_of(
            "Write to jane.doe+news@mail.example.co.uk, thanks.",
            "email"
        ),
        ["jane.doe+news@mail.example.co.uk"]
    );
    assert_eq!(
        spans_of("(a_b-c@sub-domain.org)", "email"),
        ["a_b-c@sub-domain.org"]
    );
    assert!(
        score_of("email: x@y.io", "email", "x@y.io") > score_of("see x@y.io", "email", "x@y.io")
    );
}

#[test]
fn email_near_misses_are_not_reported() {
    for t in [
        "@handle on twitter",
        "user@localhost",
        "a..b@example.com",
        "foo@bar",
        "price @ 5.00",
        "x@y.c0m",
    ] {
        assert!(spans_of(t, "email").is_empty(), "{t}");
    }
}

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
fn ip_addresses_are_parsed_not_just_matched() {
    assert_eq!(
        spans_of("login from 192.168.1.20, then", "ip_address"),
        ["192.168.1.20"]
    );
    assert_eq!(
        spans_of("host 2001:db8:85a3::8a2e:370:7334.", "ip_address"),
        ["2001:db8:85a3::8a2e:370:7334"]
    );
    assert_eq!(
        spans_of("fe80::1ff:fe23:4567:890a", "ip_address"),
        ["fe80::1ff:fe23:4567:890a"]
    );
    for t in [
        "999.1.1.1",                 // octet out of range
        "1.2.3",                     // three parts
        "v1.2.3.4",                  // version
        "version 2.10.0.1",          // version
        "10.0.0.1.5",                // five parts
        "at 12:30:45 sharp",         // time
        "mac 00:1a:2b:3c:4d:5e",     // MAC address
        "std::vector<int>",          // C++
        "localhost ::1",             // loopback shorthand
        "connect to 127.0.0.1:8080", // loopback
        "listen on 0.0.0.0",         // unspecified
    ] {
        assert!(spans_of(t, "ip_address").is_empty(), "{t}");
    }
}

#[test]
fn dates_of_birth_need_birth_context() {
    for (t, span) in [
        ("DOB: 04/12/1987", "04/12/1987"),
        ("born on March 3, 1990 in Ohio", "March 3, 1990"),
        ("date of birth 1985-11-30", "1985-11-30"),
        ("my birthday is 3rd of Dec 1979", "3rd of Dec 1979"),
        ("D.O.B. 31.12.1960", "31.12.1960"),
        ("born 12/31/85", "12/31/85"),
    ] {
        assert_eq!(spans_of(t, "date_of_birth"), [span], "{t}");
    }
    assert!(score_of("DOB: 04/12/1987", "date_of_birth", "04/12/1987") >= 0.8);
    assert!(score_of("aged 40, 04/12/1985", "date_of_birth", "04/12/1985") < 0.8);
    for t in [
        "the meeting is on 04/12/1987", // no birth context
        "born 02/30/1990",              // no such day
        "born 13/13/1990",              // no such month
        "born on 1850-01-01",           // too old
        "born 01/01/2999",              // future
        "DOB: 04/12/1987/22",           // part of a path
    ] {
        assert!(spans_of(t, "date_of_birth").is_empty(), "{t}");
    }
}

#[test]
fn person_names_from_lexicon_and_context() {
    for (t, span) in [
        ("I met John Smith yesterday.", "John Smith"),
        ("Yesterday Maria Garcia called.", "Maria Garcia"),
        ("My name is Zorblax Quintavius.", "Zorblax Quintavius"),
        ("Please ask Dr. Okonkwo.", "Okonkwo"),
        ("Regards,\nPriya Raman", "Priya Raman"),
        ("meeting with Sarah tomorrow", "Sarah"),
        ("Patrick O'Brien's car", "Patrick O'Brien"),
        ("Lucas van der Berg wrote it", "Lucas van der Berg"),
        ("Sofia de Souza wrote it", "Sofia de Souza"),
        ("ask John F. Kennedy", "John F. Kennedy"),
        ("Will Smith is an actor", "Will Smith"),
    ] {
        assert_eq!(
            spans_of(t, "person"),
            [span],
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
    assert!(
        score_of("I met John Smith.", "person", "John Smith")
            > score_of("I met John there.", "person", "John")
    );
}

#[test]
fn person_near_misses_are_not_reported() {
    for t in [
        "Will you send the report?",    // ambiguous given name, no surname
        "The New York office opened.",  // capitalised place
        "We use Python and Rust.",      // capitalised words not in the lexicon
        "JOHN SMITH IN CAPS",           // all caps is not treated as a name
        "I may grant access in June.",  // lowercase words that are names
        "See the Release Notes below.", // title case heading
        "Smith",                        // a surname alone, no context
    ] {
        assert!(
            spans_of(t, "person").is_empty(),
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
}

#[test]
fn findings_do_not_overlap_and_are_sorted() {
    let t = "Contact John Smith at john.smith@example.com or +1 415-555-0132; card 4111 1111 1111 1111, IBAN GB82WEST12345698765432, SSN 536-22-1234, from 10.1.2.3, born 1980-02-29.";
    let f = found(&scanner(), t);
    let kinds: Vec<&str> = f.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "person",
            "email",
            "phone",
            "credit_card",
            "iban",
            "us_ssn",
            "ip_address",
            "date_of_birth"
        ],
        "{f:?}"
    );
    let scan = scanner()
        .scan(&ScanInput::text(t, GuardStage::Input))
        .unwrap();
    for w in scan.findings.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    assert!(scan.score >= 0.95);
}

#[test]
fn spans_are_char_boundaries_in_unicode_text() {
    let t = "Grüße — écrivez à zoë@example.com ou José García, née le 5 mai; 📞 +49 30 1234 5678 …";
    let scan = scanner()
        .scan(&ScanInput::text(t, GuardStage::Input))
        .unwrap();
    assert!(!scan.findings.is_empty());
    for f in &scan.findings {
        assert!(
            t.is_char_boundary(f.start) && t.is_char_boundary(f.end),
            "{f:?}"
        );
    }
    assert!(spans_of(t, "phone").contains(&"+49 30 1234 5678".to_string()));
}

#[test]
fn clean_text_scores_zero() {
    let t = "Summarise the attached quarterly report in three bullet points and keep it under 200 words. Use version 3.2 of the template.";
    let scan = scanner()
        .scan(&ScanInput::text(t, GuardStage::Input))
        .unwrap();
    assert_eq!(scan, Scan::clean());
}

#[test]
fn entity_selection_limits_the_recognizers() {
    let s = PiiScanner::new(&PiiConfig {
        entities: vec!["email".into()],
        custom: vec![],
    })
    .unwrap();
    let f = found(&s, "John Smith, john@example.com, 4111 1111 1111 1111");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "email");
}

#[test]
fn config_errors_name_the_field() {
    let cfg: PiiConfig = serde_json::from_str(r#"{"entities": ["email", "phone", "x"]}"#).unwrap();
    let err = PiiScanner::new(&cfg).unwrap_err();
    assert!(
        err.starts_with("entities[2]: unknown entity \"x\""),
        "{err}"
    );
    let cfg: PiiConfig =
        serde_json::from_str(r#"{"custom": [{"name": "emp", "pattern": "EMP-("}]}"#).unwrap();
    assert!(
        PiiScanner::new(&cfg)
            .unwrap_err()
            .starts_with("custom[0].pattern: ")
    );
    let cfg: PiiConfig =
        serde_json::from_str(r#"{"custom": [{"name": "emp", "pattern": "x", "score": 1.5}]}"#)
            .unwrap();
    assert!(
        PiiScanner::new(&cfg)
            .unwrap_err()
            .starts_with("custom[0].score: ")
    );
    let cfg: PiiConfig =
        serde_json::from_str(r#"{"custom": [{"name": "Emp ID", "pattern": "x"}]}"#).unwrap();
    assert!(
        PiiScanner::new(&cfg)
            .unwrap_err()
            .starts_with("custom[0].name: ")
    );
    assert!(serde_json::from_str::<PiiConfig>(r#"{"entitys": []}"#).is_err());
    assert!(
        serde_json::from_str::<PiiConfig>(
            r#"{"custom": [{"name": "a", "pattern": "b", "validator": "crc"}]}"#
        )
        .is_err()
    );
}

#[test]
fn custom_recognizers_with_validators_and_context() {
    let cfg: PiiConfig = serde_json::from_str(
        r#"{"entities": ["email"], "custom": [
            {"name": "employee_id", "pattern": "EMP-[0-9]{6}", "context": ["employee", "staff id"], "score": 0.4},
            {"name": "imei", "pattern": "\\b[0-9]{15}\\b", "validator": "luhn", "score": 0.8},
            {"name": "nhs_number", "pattern": "\\b[0-9]{3} [0-9]{3} [0-9]{4}\\b", "validator": "nhs_mod11"}
        ]}"#,
    )
    .unwrap();
    let s = PiiScanner::new(&cfg).unwrap();
    let f = found(&s, "badge EMP-004211");
    assert_eq!(f, [("employee_id".into(), "EMP-004211".into(), 0.4)]);
    let f = found(&s, "Staff ID: EMP-004211");
    assert_eq!(f.len(), 1);
    assert!((f[0].2 - 0.75).abs() < 1e-6, "{f:?}");
    assert_eq!(found(&s, "imei 490154203237518").len(), 1);
    assert!(found(&s, "imei 490154203237519").is_empty(), "Luhn fails");
    assert_eq!(found(&s, "NHS 943 476 5919")[0].0, "nhs_number");
    assert!(found(&s, "NHS 943 476 5918").is_empty(), "mod-11 fails");
}

#[test]
fn validators_check_what_they_claim() {
    assert!(Validator::Luhn.check("4111-1111-1111-1111"));
    assert!(!Validator::Luhn.check("4111-1111-1111-1112"));
    assert!(Validator::Mod97.check("GB82 WEST 1234 5698 7654 32"));
    assert!(!Validator::Mod97.check("GB82 WEST 1234 5698 7654 33"));
    assert!(Validator::UsSsn.check("536-22-1234"));
    assert!(!Validator::UsSsn.check("666-22-1234"));
    assert!(Validator::IpAddress.check("::ffff:10.0.0.1"));
    assert!(!Validator::IpAddress.check("10.0.0.256"));
    assert!(Validator::AbaRouting.check("011000015"));
    assert!(!Validator::AbaRouting.check("011000016"));
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
fn names_with_bare_initials_diacritics_and_lowercase() {
    for (t, span) in [
        ("also features Jennifer B Eiffel. What", "Jennifer B Eiffel"),
        ("Tell Søren Kleist about it", "Søren Kleist"),
        ("sung by Jürgen Weber in 1971", "Jürgen Weber"),
        ("my name is sofia", "sofia"),
        ("i'm anna smith, hi", "anna smith"),
        ("please add Ilona Aksyonova as guardian", "Ilona Aksyonova"),
        ("Ask Herrn Müller", "Müller"),
    ] {
        assert_eq!(
            spans_of(t, "person"),
            [span],
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
    // Lowercase words are names only after an introduction.
    assert!(spans_of("we will sofia later", "person").is_empty());
}

#[test]
fn streets_companies_and_holidays_named_after_people_are_not_persons() {
    for t in [
        "Ask the driver to stop at 1765 Nelson Mandela Drive.",
        "She works at Diana Shipping Inc. now.",
        "on the last Sunday before Labor Day we left",
        "the corner of Main St. and Daniel Neck St.",
        "Raymond James Financial reported earnings.",
        "We drove to Virginia Beach.",
        "The restaurant is at 0120 Joaquin Suarez 3701",
    ] {
        assert!(
            spans_of(t, "person").is_empty(),
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
}

#[test]
fn context_words_are_whole_words_within_the_window() {
    let w = context::ContextWords::new(&["card", "date of birth", "ss#"]).unwrap();
    let t = "Your CARD: 1234";
    assert!(w.near(t, 11, 15, 48, 24));
    assert!(
        !w.near("cardinal 1234", 9, 13, 48, 24),
        "inside a longer word"
    );
    assert!(
        !w.near("discard 1234", 8, 12, 48, 24),
        "inside a longer word"
    );
    assert!(w.near("1234 (Date of Birth)", 0, 4, 48, 24));
    assert!(
        w.near("ss#1234", 3, 7, 48, 24),
        "a phrase ending in punctuation may touch the match"
    );
    let far = format!("card{}1234", " ".repeat(60));
    assert!(!w.near(&far, 64, 68, 48, 24), "outside the window");
}

#[test]
fn a_found_name_marks_its_parts_elsewhere_in_the_text() {
    assert_eq!(
        spans_of(
            "You can tell Cecilie was a huge Cecilie Josefsen fan.",
            "person"
        ),
        ["Cecilie", "Cecilie Josefsen"]
    );
    assert_eq!(
        spans_of(
            "It may be that Tesař was influenced by a song sung by Milan Tesař in 1974.",
            "person"
        ),
        ["Tesař", "Milan Tesař"]
    );
    // Without the full name, the lone word stays unknown.
    assert!(spans_of("It may be that Tesař was influenced by it.", "person").is_empty());
}

#[test]
fn family_names_in_reported_speech() {
    assert_eq!(
        spans_of("\"It works,\" says Iversen.", "person"),
        ["Iversen"]
    );
    assert_eq!(
        spans_of("\"It works,\" said Kowalski.", "person"),
        ["Kowalski"]
    );
    // Companies speak too; an unknown capitalised word after "said" is not a person.
    assert!(spans_of("\"It works,\" said Microsoft.", "person").is_empty());
    assert!(spans_of("The Release Notes said nothing.", "person").is_empty());
}
