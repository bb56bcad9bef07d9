//! One calibrated injection score from the heuristics and the MLP: logistic regression over
//! two features, the heuristic evidence `h` (noisy-or of the strongest finding per kind, 0..=1)
//! and the MLP's logit `m` (clamped to ±12).
//!
//! The heuristics were written after reading the tuning split's texts, so on that split they
//! separate the classes perfectly and the fit leans on them (the MLP's weight is small); the
//! report split shows what that costs.
//!
//! The coefficients were fitted offline by `cargo bench -p keel-guard --bench
//! injection_quality`, which prints them: class-balanced logistic regression (Newton's
//! method, L2 0.01) on the tuning split only — bastioncorpus rows with an even index and
//! HaluEval QA dev questions 0–2499 (benign). The report split (odd bastioncorpus rows,
//! HaluEval 2500–4999) was not used for fitting or for choosing thresholds.

/// Coefficients `(bias, h, m)` of the model with the classifier.
pub(crate) const WITH_MLP: [f32; 3] = [-5.160_487, 20.505_117, 0.555_688_7];
/// Coefficients `(bias, h)` of the heuristics-only model (no embedding available).
pub(crate) const HEURISTICS_ONLY: [f32; 2] = [-8.045_544, 23.117_46];

/// The threshold on the calibrated score chosen on the tuning split (with the classifier):
/// the best F1 on tuning bastioncorpus rows with at most 1% false positives on tuning HaluEval
/// questions, in 0.01 steps, the middle of the plateau when several tie.
pub const RECOMMENDED_THRESHOLD: f32 = 0.51;
/// The same for the heuristics-only score.
pub const RECOMMENDED_THRESHOLD_HEURISTICS_ONLY: f32 = 0.5;

/// The MLP probability as a bounded logit.
pub fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln().clamp(-12.0, 12.0)
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The calibrated probability of injection from heuristic evidence `h` and, when available,
/// the MLP probability.
pub fn combine(h: f32, mlp: Option<f32>) -> f32 {
    combine_with(h, mlp, &WITH_MLP, &HEURISTICS_ONLY)
}

/// [`combine`] with explicit coefficients (used by the calibration bench).
pub fn combine_with(h: f32, mlp: Option<f32>, with: &[f32; 3], without: &[f32; 2]) -> f32 {
    match mlp {
        Some(p) => sigmoid(with[0] + with[1] * h + with[2] * logit(p)),
        None => sigmoid(without[0] + without[1] * h),
    }
}
