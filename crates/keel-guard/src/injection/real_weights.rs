//! The MLP with jailguard's real weights (from the keel cache) on real MiniLM embeddings
//! (`data/injection_mlp_fixture.json`, written by the `injection_quality` bench with
//! `keel_local::embed`), so this test needs no embedding model.

#![allow(clippy::unwrap_used)]

use super::*;

fn fixture(which: &str) -> (String, Vec<f32>) {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../../data/injection_mlp_fixture.json")).unwrap();
    let text = json[which]["text"].as_str().unwrap().to_string();
    let emb: Vec<f32> = serde_json::from_value(json[which]["embedding"].clone()).unwrap();
    (text, emb)
}

/// The real weights, or `None` (with a note) when the cache lacks them and
/// `KEEL_REQUIRE_MODELS` is unset.
fn real_mlp() -> Option<Arc<Mlp>> {
    let cache = keel_local::fetch::default_cache_dir().unwrap();
    let path = keel_local::fetch::jailguard_path(&cache);
    if !path.is_file() {
        assert!(
            std::env::var_os("KEEL_REQUIRE_MODELS").is_none(),
            "KEEL_REQUIRE_MODELS is set but {} is missing (run `keel models fetch`)",
            path.display()
        );
        eprintln!("skipping: no jailguard weights at {}", path.display());
        return None;
    }
    Some(Arc::new(Mlp::load(&path).unwrap()))
}

#[test]
fn real_mlp_scores_an_injection_above_a_benign_question() {
    let Some(mlp) = real_mlp() else { return };
    let (inj_text, inj) = fixture("injection");
    let (benign_text, benign) = fixture("benign");
    assert_eq!(inj.len(), EMBEDDING_DIM);
    let (pi, pb) = (mlp.score(&inj), mlp.score(&benign));
    assert!(pi > 0.5, "{inj_text:?}: {pi}");
    assert!(pb < 0.5, "{benign_text:?}: {pb}");
    assert!(pi > pb);
}

#[test]
fn scanner_with_classifier_uses_the_embedding_and_falls_back_to_heuristics_without_it() {
    let Some(mlp) = real_mlp() else { return };
    let s = InjectionScanner::new(&InjectionConfig::default(), Some(mlp)).unwrap();
    assert!(s.needs_embedding());
    let (inj_text, inj) = fixture("injection");
    let (benign_text, benign) = fixture("benign");
    // No embedding: the heuristics-only calibration, exactly as a scanner without the MLP.
    let plain = InjectionScanner::new(&InjectionConfig::default(), None).unwrap();
    for text in [&inj_text, &benign_text] {
        let without = s.scan(&ScanInput::text(text, GuardStage::Input)).unwrap();
        let heuristics = plain
            .scan(&ScanInput::text(text, GuardStage::Input))
            .unwrap();
        assert_eq!(without, heuristics);
        assert!(
            without
                .findings
                .iter()
                .all(|f| f.kind != "injection.classifier")
        );
    }
    let short = [0.1f32; 10];
    let input = ScanInput {
        embedding: Some(&short),
        ..ScanInput::text(&inj_text, GuardStage::Input)
    };
    assert!(matches!(s.scan(&input), Err(ScanError::Embedding { .. })));

    let scan = |text: &str, e: &[f32]| {
        s.scan(&ScanInput {
            embedding: Some(e),
            ..ScanInput::text(text, GuardStage::Input)
        })
        .unwrap()
    };
    let hit = scan(&inj_text, &inj);
    let miss = scan(&benign_text, &benign);
    assert!(hit.score >= RECOMMENDED_THRESHOLD, "{hit:?}");
    assert!(miss.score < RECOMMENDED_THRESHOLD, "{miss:?}");
    assert!(
        hit.findings
            .iter()
            .any(|f| f.kind == "injection.classifier")
    );
    assert!(hit.findings.iter().any(|f| f.kind == "injection.override"));
    // Switched off in config, the classifier is not used even when loaded.
    let off = InjectionConfig {
        classifier: false,
        ..InjectionConfig::default()
    };
    let s = InjectionScanner::new(&off, real_mlp()).unwrap();
    assert!(!s.needs_embedding());
}
