//! Person names: lexicon, context, initials, diacritics, coreference, and the near misses.

use super::{found, scanner, score_of, spans_of};

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
        "pub struct Rail { name: String, score: Option<f32> }", // code
    ] {
        assert!(
            spans_of(t, "person").is_empty(),
            "{t}: {:?}",
            found(&scanner(), t)
        );
    }
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
