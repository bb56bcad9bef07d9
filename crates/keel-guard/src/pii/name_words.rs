//! Word lists for the person recognizer: titles, introducing phrases, words that are never
//! part of a name, name particles. All lowercase.

/// Titles that introduce a name (the title itself is not part of the span).
#[rustfmt::skip]
pub const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady", "lord",
    "madam", "madame", "rev", "reverend", "capt", "captain", "sgt", "sergeant", "officer",
    "detective", "nurse", "doctor", "judge", "senator", "herr", "herrn", "frau", "monsieur",
    "señor", "señora", "sra", "sr",
];
/// Phrases after which a capitalised word is a name even when it is not in the lexicon.
#[rustfmt::skip]
pub const STRONG: &[&str] = &[
    "name", "calls me", "call me", "known as", "my name is", "name is", "name's", "name:", "names:",
    "named", "called", "signed", "signed by", "sincerely", "regards", "dear", "attn", "attn:",
    "attention:", "patient", "patient:", "customer:", "employee:", "contact:", "from:", "to:",
    "cc:", "surname", "surname:", "first name", "first name:", "last name", "last name:",
    "full name", "full name:", "nombre", "je m'appelle", "ich heiße", "ich heisse", "mi nombre es",
];
/// Phrases that make a lexicon name more likely (not enough on their own).
#[rustfmt::skip]
pub const WEAK: &[&str] = &[
    "said", "says", "asked", "to", "and", "i am", "i'm", "this is", "hi", "hello", "hey", "thanks",
    "thank you", "cheers", "best", "with", "by", "meet", "met", "contact", "ask for", "speak to",
    "talk to", "spoke to", "spoke with", "told", "ask", "email", "call", "mom", "dad", "wife",
    "husband", "son", "daughter", "brother", "sister", "friend", "colleague", "manager", "boss",
];
/// Capitalised words that never start or continue a name.
#[rustfmt::skip]
pub const STOP: &[&str] = &[
    // Type names that follow "name:" in code.
    "string", "option", "vec", "hashmap", "btreemap", "result", "box", "arc", "str", "bool",
    "int", "integer", "float", "double", "object", "array", "list", "dict", "map", "set",
    "none", "null", "self", "json", "uuid", "names", "text", "value", "optional", "any",
    "i'm", "i've", "i'll", "i'd", "we're", "you're", "they're", "it's", "that's", "what's",
    "there's", "don't", "can't", "won't", "let", "the", "a", "an", "this", "that", "these", "those",
    "i", "in", "on", "at", "of", "for", "to", "and", "but", "or", "if", "when", "where", "what",
    "who", "why", "how", "my", "your", "our", "their", "his", "her", "its", "we", "you", "they",
    "he", "she", "it", "is", "are", "was", "were", "be", "please", "hi", "hello", "hey", "dear",
    "thanks", "thank", "yes", "no", "not", "so", "then", "there", "here", "also", "all", "any",
    "some", "can", "could", "would", "should", "do", "does", "did", "have", "has", "had", "from",
    "with", "by", "as", "after", "before", "since", "until", "while", "because", "about", "regards",
    "best", "sincerely", "cheers", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday", "sunday", "street", "st", "road", "avenue", "ave", "lane", "drive", "inc", "ltd",
    "llc", "corp", "company", "bank", "university", "hospital", "school", "city", "county", "state",
    "north", "south", "east", "west", "new", "san", "los", "las", "mount", "saint", "lake", "river",
    "park", "hotel", "airport", "ok", "okay", "note", "subject", "re", "fwd", "mr", "mrs", "ms",
    "dr", "prof", "sir", "dame", "lady", "lord", "miss",
];
/// Lowercase particles allowed inside a name ("Ludwig van Beethoven").
#[rustfmt::skip]
pub const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "da", "del", "della", "di", "du", "la", "le", "bin", "ibn",
    "al",
];
/// Phrases after which a lowercase given name from the lexicon is still a name.
#[rustfmt::skip]
pub const LOWERCASE_INTRO: &[&str] = &[
    "my name is", "name is", "i am", "i'm", "i’m", "this is", "call me", "calls me",
];
/// Words that make a capitalised run a place, a street, an organisation or a day.
#[rustfmt::skip]
pub const PLACE_ORG: &[&str] = &[
    "street", "st", "road", "rd", "avenue", "ave", "drive", "lane", "ln", "way", "place", "pl",
    "court", "ct", "boulevard", "blvd", "square", "sq", "terrace", "walk", "passage", "parkway",
    "highway", "hwy", "hill", "hills", "heights", "estate", "estates", "gardens", "crescent",
    "close", "row", "mills", "mill", "wells", "shoal", "shoals", "cliffs", "neck", "park", "plaza",
    "bridge", "port", "harbor", "harbour", "island", "islands", "valley", "village", "inc", "ltd",
    "llc", "plc", "corp", "corporation", "group", "holdings", "financial", "shipping", "partners",
    "associates", "company", "co", "bank", "foundation", "university", "college", "school",
    "hospital", "institute", "properties", "day", "airport", "station", "center", "centre", "sa",
    "ag", "gmbh", "bv", "nv", "spa", "ab", "as", "oy", "capital", "ventures", "industries",
    "international", "systems", "technologies", "software", "beach", "falls", "springs", "bay",
    "coast", "county", "city", "town", "creek", "river", "mountain", "mountains", "point", "lake",
    "forest", "canyon", "desert",
];
/// Endings of family names across Europe (folded, lowercase).
#[rustfmt::skip]
pub const SURNAME_SUFFIXES: &[&str] = &[
    "sson", "son", "sen", "ovic", "evic", "ski", "cki", "ova", "eva", "ov", "ev", "enko", "escu",
    "dottir", "opoulos", "yan", "idis", "ishvili", "adze", "ovich", "chuk",
];
/// Verbs that follow a person's name in reported speech ("…," says Iversen; Wormald wrote).
#[rustfmt::skip]
pub const REPORTING: &[&str] = &[
    "said", "says", "told", "asked", "wrote", "writes", "replied", "explained", "added", "argued",
    "noted", "recalled", "tweeted", "announced",
];
