//! Dates of birth: a calendar-valid date in a common format (`12/31/1990`, `31.12.1990`,
//! `1990-12-31`, `December 31, 1990`, `31st of Dec 1990`) near a birth context word. Dates
//! without one are not personal data by themselves and are not reported.

use regex::Regex;

use super::Emit;
use super::context::{ContextWords, glued_after, glued_before};

const DOB_CONTEXT: &[&str] = &[
    "born",
    "dob",
    "d.o.b",
    "date of birth",
    "birth date",
    "birthdate",
    "birthday",
    "bday",
    "b-day",
    "date-of-birth",
    "geboren",
    "né",
    "née",
    "nacido",
    "nacida",
];
/// Weaker context: reported only for an age-plausible date (a person could be that old).
const AGE_CONTEXT: &[&str] = &[
    "age",
    "aged",
    "years old",
    "year old",
    "yo",
    "turned",
    "birth",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Compiled date patterns.
#[derive(Debug, Clone)]
pub struct Dates {
    re: Regex,
    this_year: i32,
    dob_ctx: ContextWords,
    age_ctx: ContextWords,
}

impl Dates {
    /// Compiles the date pattern and context words.
    pub fn new() -> Result<Self, String> {
        let month = r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?";
        let ord = r"(?i:st|nd|rd|th)?";
        let pattern = format!(
            r"(?x)
              (?P<n1>[0-9]{{1,2}})(?P<s1>[/.\-])(?P<n2>[0-9]{{1,2}})[/.\-](?P<y1>[0-9]{{4}}|[0-9]{{2}})
            | (?P<y2>[0-9]{{4}})(?P<s2>[/.\-])(?P<n3>[0-9]{{1,2}})[/.\-](?P<n4>[0-9]{{1,2}})
            | (?P<m1>{month})[\ ](?P<d1>[0-9]{{1,2}}){ord},?[\ ](?P<y3>[0-9]{{4}})
            | (?P<d2>[0-9]{{1,2}}){ord}(?:[\ ]of)?[\ ](?P<m2>{month}),?[\ ](?P<y4>[0-9]{{4}})
            "
        );
        Ok(Self {
            re: Regex::new(&pattern).map_err(|e| format!("built-in pattern: {e}"))?,
            dob_ctx: ContextWords::new(DOB_CONTEXT)?,
            age_ctx: ContextWords::new(AGE_CONTEXT)?,
            this_year: current_year(),
        })
    }

    /// Dates of birth, scored 0.85 near a birth word, 0.6 near an age word when the date is
    /// a plausible birth date (1900 up to last year).
    pub fn dobs(&self, text: &str, out: &mut impl Emit) {
        for c in self.re.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            let (start, end) = (m.start(), m.end());
            if glued_before(text, start, b"./-") || glued_after(text, end, b"") {
                continue;
            }
            let b = text.as_bytes();
            if matches!(b.get(end), Some(b'.' | b'/' | b'-'))
                && b.get(end + 1).is_some_and(u8::is_ascii_digit)
            {
                continue;
            }
            let num = |name: &str| c.name(name).and_then(|x| x.as_str().parse::<i32>().ok());
            let year_of = |y: i32, digits: usize| {
                if digits == 2 {
                    if y + 2000 <= self.this_year {
                        y + 2000
                    } else {
                        y + 1900
                    }
                } else {
                    y
                }
            };
            let valid = if let (Some(a), Some(bb), Some(y)) = (num("n1"), num("n2"), c.name("y1")) {
                let yr = year_of(y.as_str().parse().unwrap_or(0), y.len());
                (valid_date(yr, a, bb) || valid_date(yr, bb, a)).then_some(yr)
            } else if let (Some(y), Some(mo), Some(d)) = (num("y2"), num("n3"), num("n4")) {
                valid_date(y, mo, d).then_some(y)
            } else if let (Some(mn), Some(d), Some(y)) = (c.name("m1"), num("d1"), num("y3")) {
                month_number(mn.as_str())
                    .filter(|&mo| valid_date(y, mo, d))
                    .map(|_| y)
            } else if let (Some(d), Some(mn), Some(y)) = (num("d2"), c.name("m2"), num("y4")) {
                month_number(mn.as_str())
                    .filter(|&mo| valid_date(y, mo, d))
                    .map(|_| y)
            } else {
                None
            };
            let Some(year) = valid else { continue };
            if year < 1900 || year > self.this_year {
                continue;
            }
            if self.dob_ctx.near(text, start, end, 40, 16) {
                out.emit("date_of_birth", start, end, 0.85);
            } else if year < self.this_year && self.age_ctx.near(text, start, end, 32, 24) {
                out.emit("date_of_birth", start, end, 0.6);
            }
        }
    }
}

/// Month number of a (possibly abbreviated, possibly dotted) English month name.
fn month_number(name: &str) -> Option<i32> {
    let w = name.trim_end_matches('.').to_ascii_lowercase();
    let w = if w == "sept" { "sep".to_string() } else { w };
    MONTHS
        .iter()
        .position(|m| w.len() >= 3 && m.starts_with(w.as_str()))
        .map(|i| i as i32 + 1)
}

fn valid_date(year: i32, month: i32, day: i32) -> bool {
    if !(1..=12).contains(&month) || day < 1 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// The current UTC year from the system clock (2026 if the clock is before 1970).
fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1_767_225_600);
    // Mean Gregorian year: 365.2425 days.
    1970 + (secs / 31_556_952) as i32
}
