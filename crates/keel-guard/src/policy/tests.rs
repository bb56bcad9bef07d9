use super::*;
use crate::config::{GuardConfig, ScannerConfig};
use crate::registry::Guard;
use crate::{Finding, GuardStage, Scan, ScanError, ScanInput, Scanner};

/// A scanner that scores a fixed word: 0.9 per occurrence span, 0 otherwise; errors on "ERR".
struct Word(&'static str);

impl Scanner for Word {
    fn kind(&self) -> &'static str {
        "word"
    }
    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        if input.text.contains("ERR") {
            return Err(ScanError::Failed {
                scanner: "word".into(),
                reason: "boom".into(),
            });
        }
        let findings = input
            .text
            .match_indices(self.0)
            .map(|(i, m)| Finding::new(format!("word.{m}"), i, i + m.len(), 0.9))
            .collect();
        Ok(Scan::from_findings(findings))
    }
}

fn rail(word: &'static str, action: Action, threshold: f32) -> Rail {
    Rail {
        scanner_name: word.to_owned(),
        scanner: Arc::new(Word(word)),
        threshold,
        action,
        on_error: OnError::Open,
        timeout: None,
        reroute_to: (action == Action::Reroute).then(|| "safe".to_owned()),
        kinds: Vec::new(),
    }
}

fn run(rails: &[Rail], text: &str) -> Verdict {
    evaluate(rails, &ScanInput::text(text, GuardStage::Input))
}

#[test]
fn strongest_triggered_action_wins_and_block_stops_later_rails() {
    let rails = [
        rail("alpha", Action::Redact, 0.5),
        rail("beta", Action::Escalate, 0.5),
        rail("gamma", Action::Block, 0.5),
        rail("delta", Action::Shadow, 0.5),
    ];
    let v = run(&rails, "alpha beta");
    assert_eq!(v.action, Action::Escalate);
    assert!(v.escalated());
    assert_eq!(v.redactions().len(), 1);
    assert_eq!(v.rails.len(), 4, "no block: every rail ran");

    let v = run(&rails, "alpha gamma delta");
    assert_eq!(v.action, Action::Block);
    assert_eq!(v.decided_by.as_deref(), Some("gamma"));
    assert_eq!(v.rails.len(), 3, "the block stopped the shadow rail");
    assert!(
        v.reason().contains("gamma scanner scored 0.90"),
        "{}",
        v.reason()
    );
}

#[test]
fn threshold_above_the_score_does_not_trigger() {
    let v = run(&[rail("alpha", Action::Block, 0.95)], "alpha");
    assert_eq!(v.action, Action::Allow);
    assert!((v.rails[0].score - 0.9).abs() < 1e-6);
    assert!(!v.rails[0].triggered);
}

#[test]
fn fail_open_lets_through_and_fail_closed_applies_the_action() {
    let mut r = rail("alpha", Action::Block, 0.5);
    let v = run(std::slice::from_ref(&r), "ERR alpha");
    assert_eq!(v.action, Action::Allow);
    assert!(v.rails[0].error.as_deref().unwrap_or("").contains("boom"));
    r.on_error = OnError::Closed;
    let v = run(&[r], "ERR");
    assert_eq!(v.action, Action::Block);
    assert!(v.reason().contains("fail-closed"), "{}", v.reason());
}

#[test]
fn kinds_restrict_what_counts() {
    let mut r = rail("alpha", Action::Block, 0.5);
    r.kinds = vec!["word.other".into()];
    assert_eq!(run(&[r], "alpha").action, Action::Allow);
}

#[test]
fn reroute_names_its_target() {
    let v = run(&[rail("alpha", Action::Reroute, 0.5)], "alpha");
    assert_eq!(v.action, Action::Reroute);
    assert_eq!(v.reroute_to.as_deref(), Some("safe"));
}

fn guard(toml_text: &str) -> Result<Guard, String> {
    let config: GuardConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    Guard::build(&config, None)
}

#[test]
fn config_errors_name_the_path() {
    let err = guard("[policies.p]\ninput = [{ scanner = \"nope\", action = \"block\" }]\n")
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with("guard.policies.p.input[0].scanner: unknown scanner \"nope\""),
        "{err}"
    );
    let err = guard("[policies.p]\noutput = [{ scanner = \"pii\", action = \"reroute\" }]\n")
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with("guard.policies.p.output[0].reroute_to"),
        "{err}"
    );
    let err = guard("[tenants]\nacme = \"missing\"\n")
        .err()
        .unwrap_or_default();
    assert!(err.contains("guard.tenants.acme: unknown policy"), "{err}");
    let err = guard("[scanners.pii]\nkind = \"secrets\"\n")
        .err()
        .unwrap_or_default();
    assert!(err.contains("built-in"), "{err}");
    let parsed: Result<GuardConfig, _> =
        toml::from_str("[scanners.x]\nkind = \"pii\"\nbogus = 1\n");
    assert!(parsed.is_err(), "unknown scanner options are refused");
}

#[test]
fn tenant_policy_runs_before_the_route_policy() {
    let g = guard(
        "[scanners.cards]\nkind = \"pii\"\n\
         [policies.t]\ninput = [{ scanner = \"secrets\", action = \"block\" }]\n\
         [policies.r]\ninput = [{ scanner = \"cards\", action = \"redact\" }]\n\
         [tenants]\nacme = \"t\"\n",
    )
    .unwrap();
    let p = g.for_request(Some("acme"), Some("r")).unwrap();
    let names: Vec<&str> = p.input.iter().map(|r| r.scanner_name.as_str()).collect();
    assert_eq!(names, ["secrets", "cards"]);
    assert!(g.for_request(Some("other"), None).is_none());
    let only_route = g.for_request(Some("other"), Some("r")).unwrap();
    assert_eq!(only_route.input.len(), 1);
    assert!(matches!(
        ScannerConfig::builtin("toxicity"),
        Some(ScannerConfig::Toxicity(_))
    ));
}
