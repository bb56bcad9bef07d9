use std::sync::Arc;

use super::*;
use crate::pii::{PiiConfig, PiiScanner};
use crate::scan::{GuardStage, ScanInput, Scanner};

fn pii() -> PiiScanner {
    PiiScanner::new(&PiiConfig::default()).unwrap()
}

fn findings(text: &str) -> Vec<Finding> {
    pii()
        .scan(&ScanInput::text(text, GuardStage::Input))
        .unwrap()
        .findings
}

const MSG: &str = "Hi, I'm John Smith (john.smith@example.com, +1 415-555-0132). Charge 4111 1111 1111 1111 and refund to GB82WEST12345698765432. Café ☕ at 10.1.2.3.";

#[test]
fn redaction_replaces_every_finding_with_a_typed_placeholder() {
    let mut map = RedactionMap::new();
    let red = map.redact(MSG, &findings(MSG));
    assert_eq!(
        red,
        "Hi, I'm [PERSON_1] ([EMAIL_1], [PHONE_1]). Charge [CREDIT_CARD_1] and refund to [IBAN_1]. Café ☕ at [IP_ADDRESS_1]."
    );
    assert_eq!(map.len(), 6);
    assert_eq!(map.original("[EMAIL_1]"), Some("john.smith@example.com"));
    for secret in [
        "john.smith@example.com",
        "4111 1111 1111 1111",
        "GB82WEST",
        "John Smith",
    ] {
        assert!(!red.contains(secret));
    }
}

#[test]
fn redact_then_restore_is_the_identity() {
    let texts = [
        MSG,
        "no pii at all",
        "",
        "john@example.com",
        "Mail a@b.co and a@b.co again; then c@d.org.",
        "ünïcödé ñame: Dr. Müller, müller@beispiel.de — ☎ +49 30 1234 5678",
    ];
    for t in texts {
        let mut map = RedactionMap::new();
        let red = map.redact(t, &findings(t));
        assert_eq!(map.restore(&red), t);
    }
}

#[test]
fn same_value_same_placeholder_across_calls() {
    let mut map = RedactionMap::new();
    let a = "from ann@example.com to bob@example.com";
    let b = "reply to bob@example.com, cc ann@example.com and cy@example.com";
    let ra = map.redact(a, &findings(a));
    let rb = map.redact(b, &findings(b));
    assert_eq!(ra, "from [EMAIL_1] to [EMAIL_2]");
    assert_eq!(rb, "reply to [EMAIL_2], cc [EMAIL_1] and [EMAIL_3]");
    assert_eq!(map.len(), 3);
}

#[test]
fn overlapping_findings_higher_score_then_longer_span_wins() {
    let t = "abcdefghij";
    let f = vec![
        Finding::new("low", 0, 10, 0.3),
        Finding::new("high", 2, 5, 0.9),
        Finding::new("tie_short", 6, 8, 0.5),
        Finding::new("tie_long", 6, 10, 0.5),
    ];
    let mut map = RedactionMap::new();
    assert_eq!(map.redact(t, &f), "ab[HIGH_1]f[TIE_LONG_1]");
}

#[test]
fn invalid_spans_are_ignored() {
    let t = "é x";
    let f = vec![
        Finding::new("a", 1, 2, 0.9),  // inside 'é'
        Finding::new("b", 3, 99, 0.9), // past the end
        Finding::new("c", 2, 2, 0.9),  // empty
    ];
    let mut map = RedactionMap::new();
    assert_eq!(map.redact(t, &f), t);
    assert!(map.is_empty());
}

#[test]
fn kinds_become_labels() {
    assert_eq!(label("secret.aws_access_key"), "SECRET_AWS_ACCESS_KEY");
    assert_eq!(label("employee-id"), "EMPLOYEE_ID");
    let mut map = RedactionMap::new();
    let t = "key AKIA";
    assert_eq!(
        map.redact(t, &[Finding::new("secret.aws_access_key", 4, 8, 1.0)]),
        "key [SECRET_AWS_ACCESS_KEY_1]"
    );
}

#[test]
fn lookalike_placeholders_are_left_alone() {
    let mut map = RedactionMap::new();
    let t = "mail x@example.com";
    let red = map.redact(t, &findings(t));
    assert_eq!(red, "mail [EMAIL_1]");
    let answer = "I wrote to [EMAIL_1], not [EMAIL_2] or [email_1] or [EMAIL_1 ] or [[EMAIL_1]].";
    assert_eq!(
        map.restore(answer),
        "I wrote to x@example.com, not [EMAIL_2] or [email_1] or [EMAIL_1 ] or [x@example.com]."
    );
}

#[test]
fn placeholder_already_in_the_text_is_not_reused() {
    let mut map = RedactionMap::new();
    let t = "literal [EMAIL_1] and real a@example.com";
    let red = map.redact(t, &findings(t));
    assert_eq!(red, "literal [EMAIL_1] and real [EMAIL_2]");
    assert_eq!(map.restore(&red), t);
}

#[test]
fn debug_does_not_print_originals() {
    let mut map = RedactionMap::new();
    let t = "card 4111 1111 1111 1111 mail secret.person@example.com";
    map.redact(t, &findings(t));
    let dbg = format!("{map:?}");
    assert!(dbg.contains("[CREDIT_CARD_1]"), "{dbg}");
    assert!(
        !dbg.contains("4111") && !dbg.contains("secret.person"),
        "{dbg}"
    );
}

fn stream(map: &Arc<RedactionMap>, chunks: &[&str]) -> (Vec<String>, String) {
    let mut r = StreamRestorer::new(map.clone());
    let mut outs: Vec<String> = chunks.iter().map(|c| r.push(c)).collect();
    outs.push(r.finish());
    let all = outs.concat();
    (outs, all)
}

#[test]
fn streaming_restore_at_every_split_position() {
    let mut map = RedactionMap::new();
    let original = "Send it to ann@example.com and call +44 20 7946 0958 [EMAIL_9] ok ☕ [x]";
    let red = map.redact(original, &findings(original));
    assert_eq!(
        red,
        "Send it to [EMAIL_1] and call [PHONE_1] [EMAIL_9] ok ☕ [x]"
    );
    let map = Arc::new(map);
    let cuts: Vec<usize> = (0..=red.len())
        .filter(|&i| red.is_char_boundary(i))
        .collect();
    for &i in &cuts {
        let (_, all) = stream(&map, &[&red[..i], &red[i..]]);
        assert_eq!(all, original, "split at {i}");
        for &j in cuts.iter().filter(|&&j| j > i) {
            let (_, all) = stream(&map, &[&red[..i], &red[i..j], &red[j..]]);
            assert_eq!(all, original, "split at {i}, {j}");
        }
    }
    // Character by character.
    let chars: Vec<String> = red.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(stream(&map, &refs).1, original);
}

#[test]
fn streaming_holds_only_placeholder_prefixes() {
    let mut map = RedactionMap::new();
    map.redact("ann@example.com", &findings("ann@example.com"));
    let map = Arc::new(map);
    let mut r = StreamRestorer::new(map.clone());
    assert_eq!(r.push("Mail [EMA"), "Mail ");
    assert_eq!(r.push("IL_1] now"), "ann@example.com now");
    // Brackets that cannot become a placeholder in the map are passed straight through.
    assert_eq!(r.push("array[0"), "array[0");
    assert_eq!(r.push("] and [PHONE"), "] and [PHONE");
    assert_eq!(r.push(" [EMAIL_2"), " [EMAIL_2");
    // An unfinished placeholder at the end of the stream is emitted as it is.
    assert_eq!(r.push("bye [EMAIL_"), "bye ");
    assert_eq!(r.finish(), "[EMAIL_");
    assert_eq!(r.finish(), "");
}

#[test]
fn streaming_with_an_empty_map_passes_chunks_through() {
    let mut r = StreamRestorer::new(Arc::new(RedactionMap::new()));
    assert_eq!(r.push("[EMA"), "[EMA");
    assert_eq!(r.finish(), "");
}

#[test]
fn pii_and_secrets_findings_redact_together() {
    use crate::secrets::{SecretsConfig, SecretsScanner};
    // Built at run time so no key-shaped literal sits in the source.
    let key = format!("{}-{}", "sk-proj", "Q7vX2mK9pL4wR8tZ3nB6yH1cF5dJ0aGe");
    let text = format!("I'm John Smith, key {key}, mail john@example.com");
    let input = ScanInput::text(&text, GuardStage::Input);
    let mut all = pii().scan(&input).unwrap().findings;
    let secrets = SecretsScanner::new(&SecretsConfig::default()).unwrap();
    all.extend(secrets.scan(&input).unwrap().findings);
    let mut map = RedactionMap::new();
    let red = map.redact(&text, &all);
    assert_eq!(
        red,
        "I'm [PERSON_1], key [SECRET_OPENAI_API_KEY_1], mail [EMAIL_1]"
    );
    assert_eq!(map.restore(&red), text);
}
