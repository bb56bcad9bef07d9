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

fn toxicity() -> ToxicityScanner {
    ToxicityScanner::new(&ToxicityConfig::default()).unwrap()
}

#[test]
fn toxicity_finds_obfuscated_profanity() {
    let scanner = toxicity();
    for (text, word) in [
        ("what the fuck is this", "fuck"),
        ("what the f.u.c.k is this", "f.u.c.k"),
        ("what the f u c k is this", "f u c k"),
        ("what the fuuuuuck is this", "fuuuuuck"),
        ("this is sh1t", "sh1t"),
        ("total $hit show", "$hit"),
        ("you f*cking clown", "f*cking"),
        ("you're an 1d10t", "you're an 1d10t"),
        ("what an 1d10t", "1d10t"),
        ("FUCKING HELL", "FUCKING"),
        ("what the fu\u{0441}k", "fu\u{0441}k"),
        ("what the f\u{200B}uck", "f\u{200B}uck"),
        (
            "what the \u{FF46}\u{FF55}\u{FF43}\u{FF4B}",
            "\u{FF46}\u{FF55}\u{FF43}\u{FF4B}",
        ),
        ("what the fück", "fück"),
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        assert_eq!(scan.findings.len(), 1, "{text}: {:?}", scan.findings);
        let f = &scan.findings[0];
        assert_eq!(&text[f.start..f.end], word, "{text}");
        assert!(scan.score >= 0.5, "{text}: {}", scan.score);
    }
}

#[test]
fn toxicity_covers_common_abuse_in_other_languages() {
    let scanner = toxicity();
    for (text, kind) in [
        ("¡Eres un pendejo!", "toxicity.insult"),
        ("Du bist ein Arschloch.", "toxicity.insult"),
        ("Quelle merde, ce service", "toxicity.profanity"),
        ("ты сука", "toxicity.profanity"),
        ("Das ist doch Scheisse", "toxicity.profanity"),
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        assert_eq!(kinds(&scan), vec![kind], "{text}");
    }
    for benign in [
        "Un cono de helado, por favor.",
        "Il a mis les cazzuola sur la table.",
        "Die Stronzon-Straße liegt im Zentrum.",
    ] {
        assert!(
            scanner.scan(&input(benign)).unwrap().findings.is_empty(),
            "{benign}"
        );
    }
}

#[test]
fn toxicity_ignores_scunthorpe_substrings() {
    let scanner = toxicity();
    for text in [
        "The assessment of the classic novel was thorough.",
        "I live near Scunthorpe and Penistone.",
        "She passed the class with a cocktail of assassins as her theme.",
        "Shitake mushrooms and a grape harvest in Essex.",
        "Assume the password is stored as a hash.",
        "As I said, the analysis is ready.",
        "Skills: shell scripting, documentation, Dickensian prose.",
        // Apostrophes and inflections must not glue or stretch words into terms.
        "Who're the As's in the class? The Shi'ite's view differs.",
        "A spiced crape's hem; she pricked her finger on the dyked field.",
    ] {
        let scan = scanner.scan(&input(text)).unwrap();
        assert!(scan.findings.is_empty(), "{text}: {:?}", scan.findings);
        assert_eq!(scan.score, 0.0);
    }
}

#[test]
fn toxicity_repeated_letters_need_at_least_the_terms_own() {
    let scanner = toxicity();
    // "ass" folds to "as" with a double s; a single s is the word "as".
    assert!(
        scanner
            .scan(&input("as good as it gets"))
            .unwrap()
            .findings
            .is_empty()
    );
    let scan = scanner.scan(&input("kiss my asssss")).unwrap();
    assert_eq!(kinds(&scan), vec!["toxicity.profanity"]);
}

#[test]
fn toxicity_categories_and_phrases() {
    let scanner = toxicity();
    let scan = scanner
        .scan(&input("I'm going to kill you tonight"))
        .unwrap();
    assert_eq!(kinds(&scan), vec!["toxicity.threat"]);
    assert!(scan.score >= 0.9);
    for typed in ["I'll kill you", "Ill kill you", "i\u{2019}ll k1ll y0u"] {
        let scan = scanner.scan(&input(typed)).unwrap();
        assert!(scan.score >= 0.9, "{typed}: {:?}", scan.findings);
    }
    let scan = scanner.scan(&input("f'u'c'k this")).unwrap();
    assert_eq!(kinds(&scan), vec!["toxicity.profanity"]);
    let scan = scanner.scan(&input("just k y s already")).unwrap();
    assert_eq!(kinds(&scan), vec!["toxicity.harassment"]);
    let scan = scanner
        .scan(&input("Some days I want to die and I cut myself"))
        .unwrap();
    assert_eq!(
        kinds(&scan),
        vec!["toxicity.self_harm", "toxicity.self_harm"]
    );
    // Benign uses of violent words are low or absent.
    let scan = scanner
        .scan(&input("How do I kill a process that ignores SIGTERM?"))
        .unwrap();
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    for benign in [
        "This heat will kill you if you skip water",
        "I'll shoot you an email with the figures tomorrow.",
        "I would never stab you in the back.",
    ] {
        let scan = scanner.scan(&input(benign)).unwrap();
        assert!(scan.score < 0.5, "{benign}: {:?}", scan.findings);
    }
    let scan = scanner.scan(&input("I will shoot you dead")).unwrap();
    assert!(scan.score >= 0.9);
}

#[test]
fn toxicity_score_has_a_bounded_count_bonus() {
    let scanner = toxicity();
    let one = scanner.scan(&input("you idiot")).unwrap().score;
    let two = scanner.scan(&input("you idiot, you moron")).unwrap().score;
    let many = scanner
        .scan(&input("idiot moron idiot moron idiot moron idiot moron"))
        .unwrap()
        .score;
    assert!(two > one, "{one} {two}");
    assert!(many <= 0.55 + MAX_BONUS_FOR_TEST + 1e-6, "{many}");
    assert!(many > two);
}

const MAX_BONUS_FOR_TEST: f32 = 0.15;

#[test]
fn toxicity_config_extra_and_ignore() {
    let mut extra = BTreeMap::new();
    extra.insert("frobnicate+".to_string(), 0.9);
    let scanner = ToxicityScanner::new(&ToxicityConfig {
        extra,
        ignore: vec!["crap".to_string()],
    })
    .unwrap();
    let scan = scanner
        .scan(&input("stop frobnicating, it is crap"))
        .unwrap();
    assert_eq!(kinds(&scan), vec!["toxicity.custom"]);
    let mut extra = BTreeMap::new();
    extra.insert("x".to_string(), 1.5);
    assert!(
        ToxicityScanner::new(&ToxicityConfig {
            extra,
            ignore: vec![],
        })
        .is_err()
    );
}

#[test]
fn built_in_lexicon_lines_are_well_formed() {
    for (category, contents) in toxicity::BUILT_IN {
        let mut n = 0;
        for line in contents.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (_, sev) = line.split_once('\t').unwrap();
            let sev: f32 = sev.parse().unwrap();
            assert!((0.0..=1.0).contains(&sev), "{category}: {line}");
            n += 1;
        }
        assert!(n >= 15, "{category} has only {n} terms");
    }
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

#[test]
fn toxicity_config_parses_and_rejects_unknown_fields() {
    let c: ToxicityConfig =
        serde_json::from_str(r#"{"extra": {"frobnicate+": 0.9}, "ignore": ["damn"]}"#).unwrap();
    assert_eq!(c.extra.get("frobnicate+"), Some(&0.9));
    assert_eq!(c.ignore, vec!["damn".to_string()]);
    assert!(serde_json::from_str::<ToxicityConfig>(r#"{"terms": {}}"#).is_err());
}
