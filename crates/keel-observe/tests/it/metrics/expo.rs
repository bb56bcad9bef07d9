//! A small parser for the Prometheus text exposition format, strict enough to catch
//! malformed output: HELP before TYPE before samples, no duplicate series.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub help: HashMap<String, String>,
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

pub fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(
                e.help.insert(name.into(), help.into()).is_none(),
                "two HELP: {name}"
            );
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(e.help.contains_key(name), "TYPE before HELP: {name}");
            assert!(
                e.types.insert(name.into(), kind.into()).is_none(),
                "two TYPE: {name}"
            );
        } else {
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "unexpected line {line:?}"
            );
            let sample = parse_sample(line);
            let family = family_of(&e, &sample.name);
            assert!(
                e.types.contains_key(&family),
                "sample before its TYPE: {line}"
            );
            e.samples.push(sample);
        }
    }
    e
}

/// The family a sample belongs to (histogram samples carry a suffix).
fn family_of(e: &Exposition, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && e.types.get(base).is_some_and(|t| t == "histogram")
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Sample {
            name: series.into(),
            labels: BTreeMap::new(),
            value,
        };
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}').unwrap().chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        loop {
            match chars.next().unwrap() {
                '"' => break,
                '\\' => match chars.next().unwrap() {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        assert!(labels.insert(key, value).is_none(), "{line}");
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

impl Exposition {
    /// The value of the sample with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let mut found = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want);
        let value = found.next().map(|s| s.value);
        assert!(found.next().is_none(), "duplicate series {name} {labels:?}");
        value
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name} {labels:?}"))
    }

    pub fn bucket(&self, name: &str, labels: &[(&str, &str)], le: &str) -> f64 {
        let mut labels = labels.to_vec();
        labels.push(("le", le));
        self.value(&format!("{name}_bucket"), &labels)
    }

    pub fn series(&self, name: &str) -> usize {
        self.samples.iter().filter(|s| s.name == name).count()
    }
}

pub fn assert_close(actual: f64, expected: f64) {
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() < tolerance,
        "{actual} != {expected}"
    );
}
