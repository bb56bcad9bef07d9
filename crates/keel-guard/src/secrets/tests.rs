use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::scan::GuardStage;

fn scanner() -> SecretsScanner {
    SecretsScanner::new(&SecretsConfig::default()).unwrap()
}

/// A deterministic pseudo-random string over `alphabet` (so no real-looking key is committed).
fn fake(n: usize, seed: u64, alphabet: &str) -> String {
    let a = alphabet.as_bytes();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize] as char
        })
        .collect()
}

const B62: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn found(text: &str) -> Vec<(String, String, f32)> {
    let scan = scanner()
        .scan(&ScanInput::text(text, GuardStage::Input))
        .unwrap();
    scan.findings
        .iter()
        .map(|f| (f.kind.clone(), text[f.start..f.end].to_string(), f.score))
        .collect()
}

fn assert_one(text: &str, kind: &str, span: &str, min_score: f32) {
    let f = found(text);
    assert_eq!(f.len(), 1, "{text}: {f:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), (kind, span), "{text}");
    assert!(f[0].2 >= min_score, "{f:?}");
}

#[test]
fn provider_keys_are_recognised_by_prefix() {
    let cases = [
        (
            format!("sk-ant-api03-{}", fake(93, 1, B62)),
            "secret.anthropic_api_key",
        ),
        (
            format!("sk-proj-{}", fake(48, 2, B62)),
            "secret.openai_api_key",
        ),
        (
            format!("sk-{}T3BlbkFJ{}", fake(20, 3, B62), fake(20, 4, B62)),
            "secret.openai_api_key",
        ),
        (format!("ghp_{}", fake(36, 5, B62)), "secret.github_token"),
        (format!("gho_{}", fake(36, 6, B62)), "secret.github_token"),
        (
            format!("github_pat_{}_{}", fake(22, 7, B62), fake(59, 8, B62)),
            "secret.github_token",
        ),
        (
            format!(
                "xoxb-{}-{}-{}",
                fake(12, 9, "0123456789"),
                fake(13, 10, "0123456789"),
                fake(24, 11, B62)
            ),
            "secret.slack_token",
        ),
        (
            format!("AIza{}", fake(35, 12, B62)),
            "secret.google_api_key",
        ),
        (
            format!("sk_live_{}", fake(24, 13, B62)),
            "secret.stripe_key",
        ),
        (
            format!("rk_live_{}", fake(24, 14, B62)),
            "secret.stripe_key",
        ),
        (
            format!("AKIA{}", fake(16, 15, UPPER_DIGITS)),
            "secret.aws_access_key",
        ),
        (
            format!("ASIA{}", fake(16, 16, UPPER_DIGITS)),
            "secret.aws_access_key",
        ),
    ];
    for (key, kind) in &cases {
        let text = format!("here is my key: {key}, please keep it safe");
        assert_one(&text, kind, key, 0.9);
        // Quoted and at line ends too.
        assert_one(&format!("export K=\"{key}\"\n"), kind, key, 0.9);
    }
}

#[test]
fn provider_prefix_near_misses_are_not_keys() {
    for t in [
        "pip install scikit-learn; sk-learn is a nickname".to_string(),
        "sk-1234".to_string(),                          // too short
        format!("task-{}", fake(30, 20, "abcdefghij")), // prefix inside a word
        format!("AKIA{}", fake(15, 21, UPPER_DIGITS)),  // one short
        format!("AKIA{}x", fake(16, 22, UPPER_DIGITS)), // glued to more
        "ghp_short".to_string(),
        "xoxb-".to_string(),
        format!("AIza{}", fake(20, 23, B62)), // too short
        "sk_live_".to_string(),
        "sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(), // no digits: a word, not a key
    ] {
        // A random tail may still be a generic high-entropy token, but no provider key.
        let f = found(&t);
        assert!(
            f.iter().all(|(k, _, _)| k == "secret.high_entropy"),
            "{t}: {f:?}"
        );
    }
}

#[test]
fn stripe_test_keys_score_lower_than_live_keys() {
    let live = format!("sk_live_{}", fake(24, 30, B62));
    let test = format!("sk_test_{}", fake(24, 30, B62));
    assert!(found(&live)[0].2 > found(&test)[0].2);
}

#[test]
fn pem_private_key_blocks_cover_the_whole_block() {
    let body = fake(64, 40, B62);
    let block =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n-----END RSA PRIVATE KEY-----");
    let text = format!("my key:\n{block}\nthanks");
    assert_one(&text, "secret.private_key", &block, 1.0);
    let openssh =
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----");
    assert_one(&openssh, "secret.private_key", &openssh, 1.0);
    // Cut off: everything from BEGIN to the end of the text.
    let cut = format!("-----BEGIN PRIVATE KEY-----\n{body}");
    assert_one(&format!("key {cut}"), "secret.private_key", &cut, 1.0);
    // A public key or a certificate is not a secret.
    let public = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        fake(30, 41, "abcdefghijklmnop")
    );
    assert!(found(&public).is_empty(), "{:?}", found(&public));
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn jwts_need_a_header_with_alg() {
    let jwt = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(r#"{"sub":"1234567890","name":"A","iat":1516239022}"#),
        fake(43, 50, B62)
    );
    assert_one(
        &format!("Authorization token {jwt} expired"),
        "secret.jwt",
        &jwt,
        0.9,
    );
    let no_alg = format!(
        "{}.{}.{}",
        b64(r#"{"typ":"JWT","x":1}"#),
        b64(r#"{"sub":"1"}"#),
        "abc"
    );
    assert!(found(&no_alg).iter().all(|(k, _, _)| k != "secret.jwt"));
    let not_json = format!("eyJ{}.{}.{}", fake(20, 51, "abcdef"), "abcd", "efgh");
    assert!(found(&not_json).iter().all(|(k, _, _)| k != "secret.jwt"));
}

#[test]
fn aws_secret_keys_need_their_name_nearby() {
    let secret = format!(
        "{}/{}+{}",
        fake(20, 60, B62),
        fake(10, 61, B62),
        fake(8, 62, B62)
    );
    assert_eq!(secret.len(), 40);
    assert_one(
        &format!("aws_secret_access_key = {secret}"),
        "secret.aws_secret_key",
        &secret,
        0.9,
    );
    let f = found(&format!("value {secret} here, secret elsewhere"));
    assert!(
        f.iter().all(|(k, _, _)| k != "secret.aws_secret_key"),
        "{f:?}"
    );
}

#[test]
fn bearer_tokens_and_password_assignments() {
    let tok = fake(32, 70, B62);
    assert_one(
        &format!("curl -H 'Authorization: Bearer {tok}'"),
        "secret.bearer_token",
        &tok,
        0.85,
    );
    assert_one(
        "db password: Hunter2!x",
        "secret.password",
        "Hunter2!x",
        0.7,
    );
    assert_one(
        "PASSWORD=s3cr3t-Pa55",
        "secret.password",
        "s3cr3t-Pa55",
        0.7,
    );
    for t in [
        "password: <your password here>",
        "password=${DB_PASSWORD}",
        "password: ********",
        "password: required",              // one class: a word
        "the password is strong",          // no assignment
        "Bearer authentication is used",   // no token
        "password = TEST_KEY",             // a constant's name
        "api_key: Option<Secret<String>>", // a type
        "password=\"sk-bench-not-used\"",  // dashed words
        "password: {}\\n",                 // a format string
    ] {
        assert!(found(t).is_empty(), "{t}: {:?}", found(t));
    }
}

#[test]
fn high_entropy_tokens_but_not_identifiers_hashes_or_words() {
    let tok = fake(32, 80, B62);
    assert_one(
        &format!("use {tok} to connect"),
        "secret.high_entropy",
        &tok,
        0.6,
    );
    let commit = fake(40, 81, "0123456789abcdef");
    let hex = fake(32, 82, "0123456789abcdef");
    for t in [
        format!("fixed in commit {commit}"), // hex hash
        format!("sha256 {}", fake(64, 83, "0123456789abcdef")), // checksum
        "AbstractSingletonProxyFactoryBean2 is a class".to_string(), // identifier
        "KEEL_OTLP_SURELY_UNSET_7f3a".to_string(), // an env var name
        "const K: u64 = 0xBF58_476D_1CE4_E5B9;".to_string(), // a hex constant
        "traceparent 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_string(),
        "$CACHE/models/all-minilm-l6-v2".to_string(), // a path
        "getUserAccountById2FromDatabase".to_string(),
        "src/main/java/com/example/App2Test.java".to_string(), // path
        "550e8400-e29b-41d4-a716-446655440000".to_string(),    // UUID
        "Supercalifragilisticexpialidocious is a long word".to_string(),
        format!("short {}", fake(12, 84, B62)), // below min length
    ] {
        assert!(found(&t).is_empty(), "{t}: {:?}", found(&t));
    }
    // A hex token next to a credential word is reported.
    assert_one(
        &format!("api token {hex}"),
        "secret.high_entropy",
        &hex,
        0.6,
    );
}

#[test]
fn high_entropy_can_be_turned_off_and_config_is_checked() {
    let cfg: SecretsConfig = serde_json::from_str(r#"{"high_entropy": false}"#).unwrap();
    let s = SecretsScanner::new(&cfg).unwrap();
    let tok = fake(32, 90, B62);
    assert!(s.hits(&format!("use {tok}")).is_empty());
    let cfg: SecretsConfig = serde_json::from_str(r#"{"min_entropy": 9.5}"#).unwrap();
    assert!(
        SecretsScanner::new(&cfg)
            .unwrap_err()
            .starts_with("min_entropy: ")
    );
    let cfg: SecretsConfig = serde_json::from_str(r#"{"min_length": 2}"#).unwrap();
    assert!(
        SecretsScanner::new(&cfg)
            .unwrap_err()
            .starts_with("min_length: ")
    );
    assert!(serde_json::from_str::<SecretsConfig>(r#"{"entropy": 4}"#).is_err());
}

#[test]
fn entropy_is_measured_in_bits_per_character() {
    assert_eq!(shannon_entropy("aaaa"), 0.0);
    assert!((shannon_entropy("abab") - 1.0).abs() < 1e-6);
    assert!((shannon_entropy("abcdefgh") - 3.0).abs() < 1e-6);
}

#[test]
fn clean_prose_and_code_have_no_secrets() {
    let t = "To configure the client, set the API key in your environment (OPENAI_API_KEY) and call \
             client.chat.completions.create(model=\"gpt-4o-mini\", messages=messages). The request id \
             is req_8f2a and the trace is in the dashboard under Settings > Observability.";
    assert!(found(t).is_empty(), "{:?}", found(t));
}

#[test]
fn most_random_tokens_are_detected() {
    let s = scanner();
    for len in [20, 32, 40] {
        let hits = (0..1000u64)
            .filter(|&seed| {
                let tok = fake(len, 1000 + seed, B62);
                s.hits(&format!("use {tok} now"))
                    .iter()
                    .any(|h| h.kind == "secret.high_entropy")
            })
            .count();
        println!("{len}-char random base62 tokens: {hits}/1000 detected");
        assert!(hits >= 900, "{len}-char tokens: {hits}/1000 detected");
    }
}

#[test]
fn random_mixed_text_gives_sorted_disjoint_spans_on_char_boundaries() {
    let key = format!("sk-proj-{}", fake(40, 99, B62));
    let tok = fake(32, 98, B62);
    let pieces = [
        key.as_str(),
        tok.as_str(),
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9",
        ".",
        "password=",
        "Bearer ",
        "é",
        "☕",
        " ",
        "\n",
        "AKIA",
        "=",
        "/",
        "+",
        "ghp_",
        "xoxb-",
        "名",
    ];
    let s = scanner();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..400 {
        let mut t = String::new();
        for _ in 0..30 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        let scan = s.scan(&ScanInput::text(&t, GuardStage::Input)).unwrap();
        for f in &scan.findings {
            assert!(
                t.is_char_boundary(f.start) && t.is_char_boundary(f.end),
                "{f:?} in {t:?}"
            );
        }
        for w in scan.findings.windows(2) {
            assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
        }
    }
}
