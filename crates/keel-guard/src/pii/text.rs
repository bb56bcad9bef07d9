//! Text helpers for the person recognizer: splitting into words, lowercasing with diacritic
//! folding, sentence and phrase tests around a word.

/// One word of the scanned text (byte offsets).
#[derive(Debug, Clone, Copy)]
pub struct Word {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// Capitalised: an uppercase letter followed by a lowercase one (not ALL CAPS).
    pub cap: bool,
    /// A single uppercase letter followed by '.', as in "John F. Kennedy".
    pub initial: bool,
}

/// Lowercases `s` (diacritics folded) into `buf`; allocates only when it does not fit.
pub fn lower<'b>(s: &str, buf: &'b mut [u8; 32]) -> std::borrow::Cow<'b, str> {
    if s.len() <= buf.len() && s.is_ascii() {
        let out = &mut buf[..s.len()];
        out.copy_from_slice(s.as_bytes());
        out.make_ascii_lowercase();
        return std::borrow::Cow::Borrowed(std::str::from_utf8(out).unwrap_or(""));
    }
    let mut n = 0;
    for c in s.chars().flat_map(char::to_lowercase).map(fold) {
        if n + c.len_utf8() > buf.len() {
            return std::borrow::Cow::Owned(s.to_lowercase().chars().map(fold).collect());
        }
        c.encode_utf8(&mut buf[n..]);
        n += c.len_utf8();
    }
    std::borrow::Cow::Borrowed(std::str::from_utf8(&buf[..n]).unwrap_or(""))
}

/// Folds a lowercase Latin letter with a diacritic to its base letter, so "Søren",
/// "Jürgen" and "Václav" find "soren", "jurgen" and "vaclav" in the lexicon.
pub fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' | 'ð' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
        'ł' | 'ľ' | 'ĺ' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ŕ' | 'ř' => 'r',
        'ś' | 'š' | 'ş' | 'ș' => 's',
        'ť' | 'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// Whether the text before a word ends a sentence (or is empty, or ends a line).
pub fn sentence_initial(before: &str) -> bool {
    match before
        .trim_end_matches([' ', '\t', '"', '\'', '(', '*', '-', '•'])
        .chars()
        .last()
    {
        None => true,
        Some(c) => matches!(c, '.' | '!' | '?' | '\n' | '\r' | ':' | ';' | '>'),
    }
}

/// Whether `before` ends (ignoring trailing spaces, commas, newlines) with one of `phrases`,
/// as whole words, case-insensitively.
pub fn ends_with_phrase(before: &str, phrases: &[&str]) -> bool {
    let t = before.trim_end_matches([' ', ',', '\n', '\r', '\t', '-']);
    let tb = t.as_bytes();
    phrases.iter().any(|p| {
        let pb = p.as_bytes();
        if tb.len() < pb.len() {
            return false;
        }
        let tail = &tb[tb.len() - pb.len()..];
        let whole = tb.len() == pb.len() || !tb[tb.len() - pb.len() - 1].is_ascii_alphanumeric();
        whole && tail.eq_ignore_ascii_case(pb)
    })
}

/// Alphabetic words with inner apostrophes and hyphens ("O'Brien", "Smith-Jones"); a
/// possessive "'s" is not part of the word.
pub fn split_words(text: &str) -> Vec<Word> {
    let mut words = Vec::with_capacity(text.len() / 5);
    let mut it = text.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        if !c.is_alphabetic() {
            continue;
        }
        let mut end = start + c.len_utf8();
        let mut second: Option<char> = None;
        let mut has_lower = false;
        while let Some(&(i, d)) = it.peek() {
            if d.is_alphabetic() {
                second.get_or_insert(d);
                has_lower |= d.is_lowercase();
                end = i + d.len_utf8();
                it.next();
            } else if matches!(d, '\'' | '’' | '-') {
                let rest = &text[i + d.len_utf8()..];
                let mut rc = rest.chars();
                let n1 = rc.next();
                let n2 = rc.next();
                let possessive = matches!(n1, Some('s')) && !n2.is_some_and(char::is_alphabetic);
                if n1.is_some_and(char::is_alphabetic) && !possessive {
                    it.next();
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        let cap = c.is_uppercase() && has_lower;
        // "F." or, inside a name, a bare "F" followed by a capitalised word.
        let bare = text[end..].strip_prefix(' ').and_then(|r| r.chars().next());
        let initial = c.is_uppercase()
            && second.is_none()
            && (text[end..].starts_with('.')
                || (!matches!(c, 'I' | 'A') && bare.is_some_and(char::is_uppercase)));
        words.push(Word {
            start,
            end,
            cap,
            initial,
        });
    }
    words
}
