//! Tests of the recognizers on realistic sentences, with near misses; person names in
//! [`names`], cards, IBANs, SSNs and phones in [`numbers`].

mod names;
mod numbers;

use super::*;
use crate::scan::GuardStage;

pub(super) fn scanner() -> PiiScanner {
    PiiScanner::new(&PiiConfig::default()).unwrap()
}

/// (kind, matched text, score) of every finding.
pub(super) fn found(s: &PiiScanner, text: &str) -> Vec<(String, String, f32)> {
    let scan = s.scan(&ScanInput::text(text, GuardStage::Input)).unwrap();
    scan.findings
        .iter()
        .map(|f| (f.kind.clone(), text[f.start..f.end].to_string(), f.score))
        .collect()
}

pub(super) fn spans_of(text: &str, kind: &str) -> Vec<String> {
    found(&scanner(), text)
        .into_iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, s, _)| s)
        .collect()
}

pub(super) fn score_of(text: &str, kind: &str, span: &str) -> f32 {
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
fn validators_deserialize_in_snake_case() {
    for (name, v) in [
        ("luhn", Validator::Luhn),
        ("mod97", Validator::Mod97),
        ("us_ssn", Validator::UsSsn),
        ("ip_address", Validator::IpAddress),
        ("nhs_mod11", Validator::NhsMod11),
        ("aba_routing", Validator::AbaRouting),
    ] {
        assert_eq!(
            serde_json::from_str::<Validator>(&format!("{name:?}")).unwrap(),
            v
        );
    }
}

#[test]
fn random_mixed_text_gives_sorted_disjoint_spans_on_char_boundaries() {
    // Pieces that trigger many recognizers at once, glued in pseudo-random order.
    let pieces = [
        "4111 1111 1111 1111",
        "DE89 3704 0044 0532 0130 00",
        "536-22-1234",
        "+44 20 7946 0958",
        "john@example.com",
        "10.1.2.3",
        "fe80::1ff:fe23:4567:890a",
        "born 04/12/1987",
        "Dr. Müller",
        "John Smith",
        "é",
        "☕",
        "名前",
        " ",
        ", ",
        ". ",
        "\n",
        "0",
        "-",
        "(",
        ")",
        "[EMAIL_1]",
        "Zoë",
        "ß",
        "İ",
        "1",
        "@",
        ":",
        "Mr.",
        "x",
    ];
    let s = scanner();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..400 {
        let mut t = String::new();
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        let scan = s.scan(&ScanInput::text(&t, GuardStage::Input)).unwrap();
        for f in &scan.findings {
            assert!(f.start < f.end && f.end <= t.len(), "{f:?} in {t:?}");
            assert!(
                t.is_char_boundary(f.start) && t.is_char_boundary(f.end),
                "{f:?} in {t:?}"
            );
            assert!((0.0..=1.0).contains(&f.score));
        }
        for w in scan.findings.windows(2) {
            assert!(
                w[0].end <= w[1].start,
                "{:?} overlaps {:?} in {t:?}",
                w[0],
                w[1]
            );
        }
    }
}
