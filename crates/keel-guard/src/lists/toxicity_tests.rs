use std::collections::BTreeMap;

use super::*;
use crate::scan::{GuardStage, ScanInput, Scanner};

fn input(text: &str) -> ScanInput<'_> {
    ScanInput::text(text, GuardStage::Input)
}

fn kinds(scan: &crate::Scan) -> Vec<&str> {
    scan.findings.iter().map(|f| f.kind.as_str()).collect()
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
fn toxicity_config_parses_and_rejects_unknown_fields() {
    let c: ToxicityConfig =
        serde_json::from_str(r#"{"extra": {"frobnicate+": 0.9}, "ignore": ["damn"]}"#).unwrap();
    assert_eq!(c.extra.get("frobnicate+"), Some(&0.9));
    assert_eq!(c.ignore, vec!["damn".to_string()]);
    assert!(serde_json::from_str::<ToxicityConfig>(r#"{"terms": {}}"#).is_err());
}
