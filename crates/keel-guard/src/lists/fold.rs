//! Text folding for lexicon matching, with a map back to the original byte offsets.
//!
//! Folding lowercases, maps lookalike letters to ASCII (Cyrillic and Greek homoglyphs,
//! fullwidth forms, accented Latin letters), drops invisible characters (zero-width spaces,
//! soft hyphens), turns every run of separators (apostrophes too: "who're" must not become
//! "whore") into one space, joins spelled-out words ("f.u.c.k", "b o m b" → one word) and,
//! on request, folds leetspeak (`0→o 1→i 3→e 4→a 5→s 7→t`, `@→a $→s !→i` inside words) and
//! collapses repeated letters into one folded byte that remembers its repeat count. The folded
//! text starts and ends with a space, so a whole-word check never needs a bounds check.

/// How much to fold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoldOptions {
    /// Fold digits and symbols used as letters, keep `*` inside words ("f*ck").
    pub leet: bool,
    /// Collapse runs of one letter into one folded byte with a repeat count.
    pub collapse_runs: bool,
}

/// A folded text; `starts`, `ends` and `runs` have one entry per byte of `text`.
#[derive(Debug, Default)]
pub(crate) struct Folded {
    pub text: String,
    /// Original byte offset where the character behind each folded byte starts.
    pub starts: Vec<u32>,
    /// Original byte offset where it ends (for a collapsed run: where the run ends).
    pub ends: Vec<u32>,
    /// How many times the character repeated in the original (1 unless collapsing runs).
    pub runs: Vec<u16>,
}

impl Folded {
    /// The original byte span behind the folded byte range `start..end`.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.starts[start] as usize, self.ends[end - 1] as usize)
    }

    fn push(&mut self, c: char, start: usize, end: usize) {
        let before = self.text.len();
        self.text.push(c);
        for _ in before..self.text.len() {
            self.starts.push(start as u32);
            self.ends.push(end as u32);
            self.runs.push(1);
        }
    }
}

/// One word character of the input: its folded form and original span.
#[derive(Debug, Clone, Copy)]
struct Unit {
    c: char,
    start: usize,
    end: usize,
}

/// A word: a range of units, and the separator that follows it.
#[derive(Debug, Clone, Copy)]
struct Word {
    first: usize,
    last: usize,
    /// Number of separator characters after the word, and the first one.
    sep_len: usize,
    sep_char: char,
}

fn leet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        _ => c,
    }
}

/// Whether the `*` at `i` is followed (after more stars) by a letter or digit: "f**k".
fn stars_then_letter(chars: &[(usize, char)], i: usize) -> bool {
    chars[i..]
        .iter()
        .find(|&&(_, c)| c != '*')
        .is_some_and(|&(_, c)| c.is_alphanumeric())
}

/// Characters that render as nothing and are used to split words invisibly.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}'
    )
}

/// The ASCII letter a character stands for when it is a lookalike (Cyrillic or Greek
/// homoglyph, fullwidth form) or an accented Latin letter; otherwise the character itself.
fn plain_letter(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        return char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
    }
    let lower = c.to_lowercase().next().unwrap_or(c);
    match lower {
        'а' | 'α' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ç' | 'ć' | 'č' => 'c',
        'ԁ' | 'ď' => 'd',
        'е' | 'ё' | 'ε' | 'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ї' | 'ι' | 'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'ñ' | 'ń' | 'ň' | 'η' => 'n',
        'о' | 'ο' | 'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'ś' | 'š' | 'ş' => 's',
        'т' | 'τ' | 'ť' => 't',
        'υ' | 'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'ý' | 'ÿ' => 'y',
        'ž' | 'ź' | 'ż' => 'z',
        _ => c,
    }
}

/// Folds `text` as `opts` says.
pub(crate) fn fold(text: &str, opts: FoldOptions) -> Folded {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut units: Vec<Unit> = Vec::with_capacity(chars.len());
    let mut words: Vec<Word> = Vec::new();
    let mut word_start: Option<usize> = None;
    let is_alnum = |i: usize| chars.get(i).is_some_and(|&(_, c)| c.is_alphanumeric());

    for (i, &(at, c)) in chars.iter().enumerate() {
        if is_invisible(c) {
            continue;
        }
        let c = plain_letter(c);
        let end = chars.get(i + 1).map_or(text.len(), |&(next, _)| next);
        let in_word = word_start.is_some();
        let as_letter = if c.is_alphanumeric() {
            Some(c)
        } else if opts.leet {
            match c {
                '@' | '$' if is_alnum(i + 1) => Some(if c == '@' { 'a' } else { 's' }),
                '!' if in_word && is_alnum(i + 1) => Some('i'),
                '*' if in_word && stars_then_letter(&chars, i) => Some('*'),
                _ => None,
            }
        } else {
            None
        };
        match as_letter {
            Some(c) => {
                if word_start.is_none() {
                    word_start = Some(units.len());
                }
                let c = if opts.leet { leet(c) } else { c };
                if c.is_ascii() {
                    units.push(Unit {
                        c: c.to_ascii_lowercase(),
                        start: at,
                        end,
                    });
                } else {
                    for l in c.to_lowercase() {
                        units.push(Unit {
                            c: l,
                            start: at,
                            end,
                        });
                    }
                }
            }
            None => {
                if let Some(first) = word_start.take() {
                    words.push(Word {
                        first,
                        last: units.len(),
                        sep_len: 0,
                        sep_char: c,
                    });
                }
                if let Some(w) = words.last_mut()
                    && w.last == units.len()
                {
                    w.sep_len += 1;
                }
            }
        }
    }
    if let Some(first) = word_start {
        words.push(Word {
            first,
            last: units.len(),
            sep_len: 0,
            sep_char: ' ',
        });
    }

    let mut out = Folded {
        text: String::with_capacity(text.len() + 2),
        starts: Vec::with_capacity(text.len() + 2),
        ends: Vec::with_capacity(text.len() + 2),
        runs: Vec::with_capacity(text.len() + 2),
    };
    out.push(' ', 0, 0);
    let mut w = 0;
    while w < words.len() {
        // A spelled-out word: three or more one-letter words, each followed by the same
        // single separator character ("f.u.c.k", "b o m b").
        let mut j = w;
        while j + 1 < words.len()
            && words[j].last - words[j].first == 1
            && words[j].sep_len == 1
            && words[j].sep_char == words[w].sep_char
            && words[j + 1].last - words[j + 1].first == 1
        {
            j += 1;
        }
        let joined_end = if j - w >= 2 { j } else { w };
        if w > 0 {
            let at = units[words[w].first].start;
            let prev = units[words[w - 1].last - 1].end;
            out.push(' ', prev, at);
        }
        let mut last: Option<char> = None;
        for unit in &units[words[w].first..words[joined_end].last] {
            if opts.collapse_runs && last == Some(unit.c) && unit.c.is_ascii() {
                let i = out.runs.len() - 1;
                out.runs[i] = out.runs[i].saturating_add(1);
                out.ends[i] = unit.end as u32;
            } else {
                out.push(unit.c, unit.start, unit.end);
            }
            last = Some(unit.c);
        }
        w = joined_end + 1;
    }
    out.push(' ', text.len(), text.len());
    out
}

/// The folded form of a lexicon term (no surrounding spaces) and its repeat counts.
pub(crate) fn fold_term(term: &str, opts: FoldOptions) -> Option<(String, Vec<u16>)> {
    let f = fold(term, opts);
    let inner = f.text.get(1..f.text.len() - 1)?;
    if inner.trim().is_empty() {
        return None;
    }
    Some((inner.to_string(), f.runs[1..f.runs.len() - 1].to_vec()))
}
