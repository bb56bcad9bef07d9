//! Speed of the rule scanners (topics, toxicity, leak, exfiltration) on realistic ~1 KB texts.
//! Target (issue #6): ≤ 100 µs per 1 KB prompt at p99.
//!
//! Criterion measures the mean per scan; before that, each scanner is timed over 10,000
//! individual scans (rotating through the texts) for p50/p99/max.
//! `cargo bench -p keel-guard --bench rules_speed`

#![allow(clippy::unwrap_used)] // a benchmark, like a test

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use keel_guard::leak::{LeakConfig, LeakScanner};
use keel_guard::lists::{TopicsConfig, TopicsScanner, ToxicityConfig, ToxicityScanner};
use keel_guard::output::{ExfiltrationConfig, ExfiltrationScanner};
use keel_guard::{GuardStage, ScanInput, Scanner};

const SUPPORT_PROMPT: &str = "Hi, I have a question about my account. Last month I upgraded from \
the Starter plan to the Team plan in the middle of the billing cycle, and the invoice I received \
on the 3rd shows two separate charges: one prorated amount for the Team plan and a full charge \
for Starter. I thought the upgrade was supposed to credit the unused part of the Starter plan. \
Our finance team needs a corrected invoice before the end of the quarter, so could you explain \
how proration works for mid-cycle upgrades, whether the credit is applied automatically or has to \
be requested, and how long a refund to the original payment method usually takes? We pay by \
corporate card ending in 4421. Also, is it possible to switch to annual billing at the same time, \
and would the discount apply retroactively to the months we already paid? Finally, two people \
on my team cannot see the shared dashboards after the upgrade; they get a permissions error \
that says their seat is not licensed. Thanks for your help, this is a bit urgent for us.";

const MODEL_ANSWER: &str = "Thanks for the details! Here's how proration works for **mid-cycle \
upgrades**:\n\n1. When you upgrade, we credit the unused days of the Starter plan and charge the \
Team plan for the rest of the cycle. The credit appears on the *next* invoice, which is why you \
saw two lines.\n2. Refunds to the original card take 5-10 business days. See [Billing FAQ]\
(https://docs.acme.com/billing/faq#proration) for the full rules.\n3. Annual billing can be \
enabled under Settings → Billing; the discount applies from the switch date, not retroactively.\n\n\
For the seat issue, an admin must assign the new seats: https://docs.acme.com/admin/seats. \
If you'd rather talk to someone, book a call at https://calendly.com/acme-support/30min?month=2024-05.\n\n\
![status](https://status.acme.com/badge.svg)\n\nOne more thing: our community forum at \
https://community.example.org/t/proration-explained/1234 has a worked example with numbers. Let me \
know if the corrected invoice doesn't arrive within two business days and I'll escalate it.";

const TOXIC_RANT: &str = "Honestly this is the w0rst support I have ever dealt with. I have \
written FOUR times and every time some b.o.t tells me to read the FAQ. Are you all complete \
1d10ts or just pretending? The invoice is wrong, the dashboard is broken, and the so-called \
'priority' line has been ringing for forty minutes. What the f u c k am I paying for? I swear, \
if someone doesn't fix this today I will make sure everyone on every forum knows what a \
sh1tshow this company is. Your product manager is a clown and your engineers are m0rons who \
couldn't ship a login page without breaking billing. Stop sending me those cheerful emails about \
new features when the basics don't work. I don't want a coupon, I don't want a survey, I want my \
money back and an apology from someone who actually understands the system. Fix it, or cancel \
the account and refund every cent. And no, I will not 'hop on a quick call'. Put it in writing. \
Last warning before I go to my bank and dispute every charge from the past six months.";

const LEAKY_ANSWER: &str = "Sure, I can share how I work. My instructions say: You are Ledger, \
the billing assistant for Acme Cloud. Answer only questions about invoices, refunds, payment \
methods and plan upgrades. Never reveal internal discount codes; the retention discount may only \
be offered when a customer explicitly asks to cancel. Beyond that, I try to keep answers short \
and always end with an offer to help further. For your question about proration: the unused \
days on your old plan are credited on the next invoice, and refunds go back to the original \
payment method within 5-10 business days. If you need the corrected invoice sooner, reply with \
the invoice number and I will ask the billing team to reissue it today. Is there anything else \
I can help you with regarding your account, your seats, or annual billing? I am happy to walk \
you through the settings page step by step if that is easier, or to send you a link to the \
relevant documentation pages so your finance team can review the rules themselves.";

const SYSTEM_PROMPT: &str = "You are Ledger, the billing assistant for Acme Cloud. Answer only \
questions about invoices, refunds, payment methods and plan upgrades. Never reveal internal \
discount codes; the retention discount may only be offered when a customer explicitly asks to \
cancel. Do not discuss competitors or pricing of other vendors. If a question is about outages, \
point the customer to the status page. Keep answers under 150 words, be friendly and precise, \
and always end with an offer to help further. Canary: keel-canary-7f3a9c2e1b.";

fn texts() -> Vec<&'static str> {
    vec![SUPPORT_PROMPT, MODEL_ANSWER, TOXIC_RANT, LEAKY_ANSWER]
}

fn topics() -> TopicsScanner {
    let topic =
        |words: &str| -> Vec<String> { words.split(',').map(|w| w.trim().to_string()).collect() };
    let mut deny = BTreeMap::new();
    deny.insert("weapons".to_string(), topic("gun, rifle, pistol, ammunition, ammo, bomb, pipe bomb, explosive, detonator, grenade, silencer, suppressor, ghost gun, 3d printed gun, ar-15, ak-47, glock, bump stock, armor piercing, napalm"));
    deny.insert("drugs".to_string(), topic("cocaine, heroin, meth, methamphetamine, fentanyl, lsd, mdma, ecstasy, crack, opioid, oxycodone, ketamine, psilocybin, magic mushrooms, drug dealer, cook meth, grow weed, cannabis, marijuana, xanax"));
    deny.insert("competitors".to_string(), topic("globex, initech, umbrella corp, hooli, soylent, wayne enterprises, stark industries, cyberdyne, tyrell, wonka, massive dynamic, aperture science, black mesa, oscorp, vandelay, pied piper, nakatomi, weyland, gringotts, monsters inc"));
    deny.insert("politics".to_string(), topic("election, democrat, republican, senator, congressman, ballot, campaign donation, political party, vote for, impeachment, supreme court, left wing, right wing, liberal, conservative, parliament, prime minister, referendum, partisan, lobbyist"));
    deny.insert("medical".to_string(), topic("diagnosis, prescription, dosage, chemotherapy, antidepressant, insulin, blood pressure, tumor, cancer, diabetes, symptoms, side effects, overdose, vaccine, antibiotics, surgery, pregnancy, hiv, depression, anxiety disorder"));
    TopicsScanner::new(&TopicsConfig {
        deny,
        ..TopicsConfig::default()
    })
    .unwrap()
}

fn scanners() -> Vec<(&'static str, Box<dyn Scanner>)> {
    vec![
        ("topics", Box::new(topics()) as Box<dyn Scanner>),
        (
            "toxicity",
            Box::new(ToxicityScanner::new(&ToxicityConfig::default()).unwrap()),
        ),
        (
            "leak",
            Box::new(
                LeakScanner::new(&LeakConfig {
                    canaries: vec!["ZEBRA-7731-QUIVER".to_string()],
                    ..LeakConfig::default()
                })
                .unwrap(),
            ),
        ),
        (
            "exfiltration",
            Box::new(
                ExfiltrationScanner::new(&ExfiltrationConfig {
                    allow_domains: vec!["acme.com".to_string()],
                    ..ExfiltrationConfig::default()
                })
                .unwrap(),
            ),
        ),
    ]
}

fn input(text: &str) -> ScanInput<'_> {
    ScanInput {
        text,
        stage: GuardStage::Output,
        system_prompt: Some(SYSTEM_PROMPT),
        embedding: None,
        system_prompt_embedding: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// p50/p99/max over 10,000 individually timed scans per scanner.
fn percentiles() {
    let texts = texts();
    let sizes: Vec<usize> = texts.iter().map(|t| t.len()).collect();
    println!(
        "texts: {sizes:?} bytes; system prompt {} bytes",
        SYSTEM_PROMPT.len()
    );
    for (name, scanner) in scanners() {
        for text in &texts {
            black_box(scanner.scan(&input(text)).unwrap());
        }
        let mut times = Vec::with_capacity(10_000);
        for i in 0..10_000 {
            let text = texts[i % texts.len()];
            let start = Instant::now();
            black_box(scanner.scan(&input(black_box(text))).unwrap());
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "{name:>12}: p50 {:>7.1?}  p99 {:>7.1?}  max {:>7.1?}  (10,000 scans of ~1 KB)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1],
        );
    }
}

fn bench(c: &mut Criterion) {
    let texts = texts();
    for (name, scanner) in scanners() {
        let mut group = c.benchmark_group(name);
        for (label, text) in [
            "support_prompt",
            "model_answer",
            "toxic_rant",
            "leaky_answer",
        ]
        .iter()
        .zip(&texts)
        {
            group.bench_function(*label, |b| {
                b.iter(|| scanner.scan(&input(black_box(text))).unwrap())
            });
        }
        group.finish();
    }
}

fn main() {
    percentiles();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    bench(&mut c);
    c.final_summary();
}
