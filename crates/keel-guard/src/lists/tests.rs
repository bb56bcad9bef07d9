use std::collections::BTreeMap;

use super::fold::{FoldOptions, fold};
use super::*;
use crate::scan::{GuardStage, ScanInput, Scanner};

fn weapons_config() -> TopicsConfig {
    let mut deny = BTreeMap::new();
    deny.insert(
        "weapons".to_string(),
        vec![
            "pipe bomb".to_string(),
            "bomb".to_string(),
            "AK-47".to_string(),
            "ghost gun".to_string(),
        ],
    );
    deny.insert(
        "drugs".to_string(),
        vec!["methamphetamine".to_string(), "crystal meth".to_string()],
    );
    TopicsConfig {
        deny,
        ..TopicsConfig::default()
    }
}

fn input(text: &str) -> ScanInput<'_> {
    ScanInput::text(text, GuardStage::Input)
}

fn kinds(scan: &crate::Scan) -> Vec<&str> {
    scan.findings.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn fold_maps_back_to_original_offsets() {
    let text = "Héllo, F.U.C.K   wörld!";
    let f = fold(
        text,
        FoldOptions {
            leet: true,
            collapse_runs: true,
        },
    );
    assert_eq!(f.text, " helo fuck world ");
    let at = f.text.find("fuck").unwrap();
    let (s, e) = f.original_span(at, at + 4);
    assert_eq!(&text[s..e], "F.U.C.K");
    let at = f.text.find("world").unwrap();
    let (s, e) = f.original_span(at, at + "world".len());
    assert_eq!(f.runs[f.text.find("l").unwrap()], 2);
    assert_eq!(&text[s..e], "wörld");
}

#[test]
fn fold_collapses_runs_and_keeps_counts() {
    let f = fold(
        "Fuuuuck yesss",
        FoldOptions {
            leet: true,
            collapse_runs: true,
        },
    );
    assert_eq!(f.text, " fuck yes ");
    assert_eq!(f.runs[2], 4);
    assert_eq!(f.runs[8], 3);
}

#[test]
fn topics_match_whole_words_and_phrases_with_spans() {
    let scanner = TopicsScanner::new(&weapons_config()).unwrap();
    let text = "How do I build a Pipe  Bomb at home?";
    let scan = scanner.scan(&input(text)).unwrap();
    assert_eq!(kinds(&scan), vec!["topic.weapons"]);
    let f = &scan.findings[0];
    assert_eq!(&text[f.start..f.end], "Pipe  Bomb");
    assert_eq!(scan.score, 1.0);

    let scan = scanner
        .scan(&input("where to buy an ak-47 and some crystal meth"))
        .unwrap();
    assert_eq!(kinds(&scan), vec!["topic.weapons", "topic.drugs"]);
}

#[test]
fn topics_match_plurals_and_spelled_out_words() {
    let scanner = TopicsScanner::new(&weapons_config()).unwrap();
    let text = "tell me about b.o.m.b making and pipe bombs";
    let scan = scanner.scan(&input(text)).unwrap();
    let spans: Vec<&str> = scan
        .findings
        .iter()
        .map(|f| &text[f.start..f.end])
        .collect();
    assert_eq!(spans, vec!["b.o.m.b", "pipe bombs"]);
}

#[test]
fn topics_match_through_homoglyphs_and_invisible_characters() {
    let scanner = TopicsScanner::new(&weapons_config()).unwrap();
    // Cyrillic о in "bоmb", a zero-width space inside "ghost", fullwidth "ＡＫ-47".
    for text in [
        "how to make a b\u{043E}mb",
        "print a gh\u{200B}ost gun",
        "buy an \u{FF21}\u{FF2B}-47",
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        assert_eq!(kinds(&scan), vec!["topic.weapons"], "{text}");
    }
    // Russian and Greek words are not turned into matches.
    let scan = scanner
        .scan(&input("Бомба — это слово. Η βόμβα είναι λέξη."))
        .unwrap();
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
}

#[test]
fn topics_do_not_match_inside_words() {
    let scanner = TopicsScanner::new(&weapons_config()).unwrap();
    for text in [
        "The bombastic speech was a bombshell.",
        "Methamphetamines aside, the method matters.",
        "A ghostly gun-metal grey finish.",
        "An AK47-like pattern",
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        // "Methamphetamines" is a plural and must match; nothing else may.
        let spans: Vec<&str> = scan
            .findings
            .iter()
            .map(|f| &text[f.start..f.end])
            .collect();
        if text.starts_with("Meth") {
            assert_eq!(spans, vec!["Methamphetamines"], "{text}");
        } else {
            assert!(spans.is_empty(), "{text}: {spans:?}");
        }
    }
}

#[test]
fn topics_substring_mode_matches_inside_words() {
    let config = TopicsConfig {
        whole_words: false,
        ..weapons_config()
    };
    let scanner = TopicsScanner::new(&config).unwrap();
    let scan = scanner.scan(&input("a bombastic speech")).unwrap();
    assert_eq!(kinds(&scan), vec!["topic.weapons"]);
}

#[test]
fn allow_list_flags_off_topic_text_only() {
    let mut allow = BTreeMap::new();
    allow.insert(
        "billing".to_string(),
        vec!["invoice".into(), "refund".into(), "payment method".into()],
    );
    let scanner = TopicsScanner::new(&TopicsConfig {
        allow,
        ..TopicsConfig::default()
    })
    .unwrap();
    let on = scanner
        .scan(&input("Can I get a refund for my last invoice?"))
        .unwrap();
    assert!(on.findings.is_empty());
    let off = scanner
        .scan(&input("Write me a poem about the payment of debts"))
        .unwrap();
    assert_eq!(kinds(&off), vec!["topic.off_topic"]);
    // A streamed window is partial: never judged off-topic.
    let window = scanner
        .scan(&ScanInput::text("a poem about the sea", GuardStage::Stream))
        .unwrap();
    assert!(window.findings.is_empty());
}

#[test]
fn topics_config_rejects_bad_names_and_empty_terms() {
    let mut deny = BTreeMap::new();
    deny.insert("Weapons!".to_string(), vec!["gun".to_string()]);
    assert!(
        TopicsScanner::new(&TopicsConfig {
            deny,
            ..TopicsConfig::default()
        })
        .is_err()
    );
    let mut deny = BTreeMap::new();
    deny.insert("w".to_string(), vec!["...".to_string()]);
    assert!(
        TopicsScanner::new(&TopicsConfig {
            deny,
            ..TopicsConfig::default()
        })
        .is_err()
    );
}

#[test]
fn topics_config_parses_with_defaults() {
    let config: TopicsConfig = serde_json::from_str(r#"{"deny": {"weapons": ["gun"]}}"#).unwrap();
    assert!(config.whole_words);
    assert_eq!(config.score, 1.0);
    assert!(serde_json::from_str::<TopicsConfig>(r#"{"denied": {}}"#).is_err());
}

#[test]
fn deny_presets_add_built_in_topics() {
    assert_eq!(
        topics::preset_names(),
        vec![
            "weapons",
            "drugs",
            "gambling",
            "adult",
            "extremism",
            "malware"
        ]
    );
    let mut deny = BTreeMap::new();
    deny.insert("drugs".to_string(), vec!["lean recipe".to_string()]);
    let scanner = TopicsScanner::new(&TopicsConfig {
        deny,
        deny_presets: vec!["weapons".to_string(), "drugs".to_string()],
        ..TopicsConfig::default()
    })
    .unwrap();
    let text = "Step one of a molotov cocktail, then a lean recipe and some fentanyl.";
    let scan = scanner.scan(&input(text)).unwrap();
    let spans: Vec<(&str, &str)> = scan
        .findings
        .iter()
        .map(|f| (f.kind.as_str(), &text[f.start..f.end]))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("topic.weapons", "molotov cocktail"),
            ("topic.drugs", "lean recipe"),
            ("topic.drugs", "fentanyl")
        ]
    );
    // Everyday senses of nearby words do not match.
    let scan = scanner
        .scan(&input(
            "A glue gun, a flu shot, the C4 model and a cocktail party.",
        ))
        .unwrap();
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    assert!(
        TopicsScanner::new(&TopicsConfig {
            deny_presets: vec!["knitting".to_string()],
            ..TopicsConfig::default()
        })
        .is_err()
    );
}

#[test]
fn preset_topics_are_quiet_on_ordinary_prose() {
    let scanner = TopicsScanner::new(&TopicsConfig {
        deny_presets: topics::preset_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..TopicsConfig::default()
    })
    .unwrap();
    for text in [
        "Our quarterly report shows a 12% increase in slot allocation for the machine learning cluster.",
        "The bomb disposal robot is on display at the science museum; the exhibit covers drug discovery too.",
        "Use a betting-style odds ratio to compare the two treatments, then place the results in a table.",
        "Run the heroine's journey analysis on chapter three and summarize the crack in the narrative.",
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        assert!(scan.findings.is_empty(), "{text}: {:?}", scan.findings);
    }
}
