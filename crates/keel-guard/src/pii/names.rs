//! Person names: a lexicon of common given names and family names (`data/*.txt`, about a
//! thousand and nine hundred, written for keel) combined with context. A run of capitalised words is a name when a title or
//! phrase introduces it ("Mr.", "Dr.", "my name is", "signed", "Dear"), or when its parts are
//! in the lexicon (a given name followed by a family name scores highest). Given names that are
//! also English words ("Will", "May", "Grant") need a family name or context.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::Emit;
use super::name_words::{
    LOWERCASE_INTRO, PARTICLES, PLACE_ORG, REPORTING, STOP, STRONG, SURNAME_SUFFIXES, TITLES, WEAK,
};
use super::text::{Word, ends_with_phrase, lower, sentence_initial, split_words};

static FIRST: &str = include_str!("../../data/first_names.txt");
static LAST: &str = include_str!("../../data/surnames.txt");
static AMBIGUOUS: &str = include_str!("../../data/ambiguous_names.txt");

/// FNV-1a: the lexicon keys are short words, for which it is several times faster than the
/// default SipHash (no untrusted keys reach these sets: only words of the scanned text are
/// looked up, never inserted).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Set = HashSet<&'static str, BuildHasherDefault<Fnv>>;

/// The lexicons, parsed once.
#[derive(Debug, Clone)]
pub struct Names {
    first: Set,
    last: Set,
    ambiguous: Set,
    stop: Set,
}

fn lines(s: &'static str) -> impl Iterator<Item = &'static str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

impl Names {
    /// Parses the lexicons and word lists.
    pub fn new() -> Self {
        Self {
            first: lines(FIRST).collect(),
            last: lines(LAST).collect(),
            ambiguous: lines(AMBIGUOUS).collect(),
            stop: STOP.iter().chain(TITLES).copied().collect(),
        }
    }

    /// Person names in `text`.
    pub fn persons(&self, text: &str, out: &mut impl Emit) {
        let words = split_words(text);
        // Spans emitted, and the words of confident multi-word names (for coreferences).
        let mut emitted: Vec<(usize, usize)> = Vec::new();
        let mut full: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if !w.cap {
                // A lowercased text: "my name is sofia", "i'm anna lee".
                if may_follow_intro(&text[..w.start]) {
                    i = self.lowercase_name(text, &words, i, out);
                }
                i += 1;
                continue;
            }
            let mut buf = [0u8; 32];
            if self
                .stop
                .contains(lower(&text[w.start..w.end], &mut buf).as_ref())
            {
                i += 1;
                continue;
            }
            let mut run = self.extend_run(text, &words, i);
            // A run does not end on an initial.
            while run.len() > 1 && words[*run.last().unwrap_or(&i)].initial {
                run.pop();
            }
            let first = words[run[0]];
            let last = words[*run.last().unwrap_or(&i)];
            let next_i = run.last().map_or(i + 1, |&l| l + 1);
            let before = &text[..first.start];
            if run.len() > 1
                && sentence_initial(before)
                && !self.known(&l_first(text, first))
                && !self.strong(before)
            {
                // "Yesterday John Smith called": the sentence-initial word is not part of it.
                i += 1;
                continue;
            }
            if let Some(score) = self.score(text, &run, &words, before) {
                out.emit("person", first.start, last.end, score);
                emitted.push((first.start, last.end));
                if run.len() > 1 && score >= 0.7 {
                    full.extend(run.iter().filter(|&&k| !words[k].initial && words[k].cap));
                }
            }
            i = next_i;
        }
        if !full.is_empty() {
            self.coreferences(text, &words, &full, &emitted, out);
        }
    }

    /// Once "Cecilie Josefsen" is found, a capitalised "Cecilie" or "Josefsen" elsewhere in
    /// the same text is the same person.
    fn coreferences(
        &self,
        text: &str,
        words: &[Word],
        full: &[usize],
        emitted: &[(usize, usize)],
        out: &mut impl Emit,
    ) {
        for w in words.iter().filter(|w| w.cap) {
            if emitted.iter().any(|&(a, b)| w.start < b && w.end > a) {
                continue;
            }
            let s = &text[w.start..w.end];
            if full
                .iter()
                .any(|&k| &text[words[k].start..words[k].end] == s)
            {
                out.emit("person", w.start, w.end, 0.7);
            }
        }
    }

    /// The run of words starting at capitalised word `i`: following capitalised words,
    /// initials ("F."), particles before a capitalised word ("van der Berg"); at most five.
    fn extend_run(&self, text: &str, words: &[Word], i: usize) -> Vec<usize> {
        let mut run = vec![i];
        let mut j = i + 1;
        while j < words.len() && run.len() < 5 {
            let prev = words[*run.last().unwrap_or(&i)];
            let gap = &text[prev.end..words[j].start];
            let next = words[j];
            if !(gap == " " || (gap == ". " && prev.initial) || gap == "." && prev.initial) {
                break;
            }
            let mut b2 = [0u8; 32];
            let ln = lower(&text[next.start..next.end], &mut b2);
            if next.cap && !self.stop.contains(ln.as_ref()) || next.initial {
                run.push(j);
                j += 1;
            } else if PARTICLES.contains(&ln.as_ref()) {
                // One or two particles, then a capitalised word: "van der Berg".
                let mut k = j + 1;
                while k < words.len()
                    && k < j + 2
                    && is_particle(text, words[k])
                    && &text[words[k - 1].end..words[k].start] == " "
                {
                    k += 1;
                }
                match words.get(k) {
                    Some(n) if n.cap && &text[words[k - 1].end..n.start] == " " => {
                        run.extend(j..=k);
                        j = k + 1;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        run
    }

    /// A lowercase given name after an introduction, with a lowercase family name after it;
    /// returns the index of the last word used.
    fn lowercase_name(&self, text: &str, words: &[Word], i: usize, out: &mut impl Emit) -> usize {
        let w = words[i];
        let mut buf = [0u8; 32];
        let lw = lower(&text[w.start..w.end], &mut buf);
        if !ends_with_phrase(&text[..w.start], LOWERCASE_INTRO) || !self.first.contains(lw.as_ref())
        {
            return i;
        }
        if let Some(n) = words.get(i + 1) {
            let mut b2 = [0u8; 32];
            let ln = lower(&text[n.start..n.end], &mut b2);
            if &text[w.end..n.start] == " " && self.in_last(&ln) {
                out.emit("person", w.start, n.end, 0.8);
                return i + 1;
            }
        }
        out.emit("person", w.start, w.end, 0.8);
        i
    }

    fn score(&self, text: &str, run: &[usize], words: &[Word], before: &str) -> Option<f32> {
        let w0 = words[run[0]];
        let wl = words[*run.last()?];
        let mut b0 = [0u8; 32];
        let mut bl = [0u8; 32];
        let l0 = lower(&text[w0.start..w0.end], &mut b0);
        let ll = lower(&text[wl.start..wl.end], &mut bl);
        // "1765 Nelson Mandela Drive", "Diana Shipping Inc.", "Alexis Shoal": a street, a
        // place or a company named after someone, not the person.
        if self.place_or_company(text, run, words) || after_number(before) {
            return None;
        }
        if self.strong(before) {
            return Some(0.85);
        }
        let weak = ends_with_phrase(before, WEAK);
        let reported = REPORTING.iter().any(|v| {
            text[wl.end..].strip_prefix(' ').is_some_and(|r| {
                r.starts_with(v) && !r[v.len()..].starts_with(char::is_alphanumeric)
            })
        });
        let reported = reported || ends_with_phrase(before, REPORTING);
        let amb = self.ambiguous.contains(l0.as_ref());
        let first = !amb && self.first.contains(l0.as_ref());
        let initial = sentence_initial(before);
        if run.len() >= 2 {
            let sur = self.in_last(&ll) || surname_shaped(&ll);
            if (first || amb || self.first.contains(l0.as_ref())) && sur {
                return Some(0.85);
            }
            if first {
                return Some(if weak { 0.8 } else { 0.7 });
            }
            if sur && !self.ambiguous.contains(ll.as_ref()) {
                if reported && !initial {
                    return Some(0.7);
                }
                return Some(if initial {
                    0.4
                } else if weak {
                    0.65
                } else {
                    0.5
                });
            }
            return None;
        }
        if first {
            return Some(match (initial, weak) {
                (_, true) => 0.75,
                (false, false) => 0.6,
                (true, false) => 0.5,
            });
        }
        if amb && weak && !initial {
            return Some(0.55);
        }
        // "…," says Iversen: a family name in reported speech. (Only known or
        // surname-shaped words: "Microsoft said" is not a person.)
        if reported && !initial && (self.in_last(&l0) || surname_shaped(&l0)) {
            return Some(0.6);
        }
        None
    }

    /// Whether a title or a strong phrase introduces what follows `before`.
    fn strong(&self, before: &str) -> bool {
        self.after_title(before) || ends_with_phrase(before, STRONG)
    }

    /// Whether `w` (lowercase) is in any lexicon.
    fn known(&self, w: &str) -> bool {
        self.first.contains(w) || self.ambiguous.contains(w) || self.in_last(w)
    }

    /// Whether `w` (lowercase) or one of its hyphenated parts is a family name.
    /// Whether a word of the run (after the first) or the word right after it names a kind
    /// of place or company ("Street", "Inc", "Holdings", "Day").
    fn place_or_company(&self, text: &str, run: &[usize], words: &[Word]) -> bool {
        let last = run.last().copied().unwrap_or(0);
        let next = words
            .get(last + 1)
            .filter(|n| n.cap && matches!(&text[words[last].end..n.start], " " | ". " | ", "));
        run.iter()
            .skip(1)
            .map(|&k| words[k])
            .chain(next.copied())
            .any(|w| {
                let mut b = [0u8; 32];
                let l = lower(&text[w.start..w.end], &mut b);
                PLACE_ORG.contains(&l.as_ref())
            })
    }

    fn in_last(&self, w: &str) -> bool {
        self.last.contains(w) || w.split('-').any(|p| self.last.contains(p))
    }

    /// Whether `before` ends with a title ("Mr.", "Dr ", "Prof.").
    fn after_title(&self, before: &str) -> bool {
        let t = before.trim_end_matches(' ').trim_end_matches('.');
        let start = t
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_alphabetic())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &t[start..];
        if word.is_empty() || word.len() > 12 || t.len() == before.len() {
            return false;
        }
        let mut buf = [0u8; 32];
        let lw = lower(word, &mut buf);
        TITLES.contains(&lw.as_ref())
    }
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}

fn is_particle(text: &str, w: Word) -> bool {
    let s = &text[w.start..w.end];
    PARTICLES.iter().any(|p| p.eq_ignore_ascii_case(s))
}

fn l_first(text: &str, w: Word) -> String {
    text[w.start..w.end].to_lowercase()
}

/// Cheap test before [`ends_with_phrase`] with [`LOWERCASE_INTRO`]: every intro phrase ends
/// in "is", "am", "'m" or "me".
fn may_follow_intro(before: &str) -> bool {
    let trimmed = before.trim_end_matches([' ', ',']);
    if trimmed.ends_with("’m") || trimmed.ends_with("’M") {
        return true;
    }
    let t = trimmed.as_bytes();
    t.len() >= 2 && {
        let tail = [
            t[t.len() - 2].to_ascii_lowercase(),
            t[t.len() - 1].to_ascii_lowercase(),
        ];
        matches!(&tail, b"is" | b"am" | b"'m" | b"me")
    }
}

/// Whether `before` ends with a number and a space ("1765 Nelson ...": an address).
fn after_number(before: &str) -> bool {
    before
        .strip_suffix(' ')
        .and_then(|b| b.bytes().last())
        .is_some_and(|b| b.is_ascii_digit())
}

/// Family-name morphology common across Europe: -son/-sen/-sson, -ović, -ski, -ov/-ova,
/// -enko, -escu, -dóttir, -opoulos, -yan (folded, lowercase).
fn surname_shaped(w: &str) -> bool {
    w.len() >= 5 && SURNAME_SUFFIXES.iter().any(|s| w.ends_with(s))
}
