use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn sample(rng: &mut StdRng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n).map(|_| normal(rng, mean, sd)).collect()
}

#[test]
fn deciles_of_continuous_data_give_ten_bins_of_equal_mass() {
    let base: Vec<f64> = (0..1000).map(f64::from).collect();
    let cuts = quantile_cuts(&base, PSI_BINS);
    assert_eq!(cuts.len(), 9);
    assert_eq!(cuts[0], 99.0);
    assert_eq!(cuts[8], 899.0);
    assert!(histogram(&cuts, &base).iter().all(|&c| c == 100));
    assert_eq!(bin_of(&cuts, -5.0), 0);
    assert_eq!(bin_of(&cuts, 99.0), 0);
    assert_eq!(bin_of(&cuts, 99.5), 1);
    assert_eq!(bin_of(&cuts, 1e9), 9);
}

#[test]
fn binary_signals_get_two_bins_whichever_value_dominates() {
    let mostly_zero: Vec<f64> = (0..200).map(|i| f64::from(u8::from(i % 50 == 0))).collect();
    assert_eq!(quantile_cuts(&mostly_zero, PSI_BINS), vec![0.0]);
    let mostly_one: Vec<f64> = (0..200).map(|i| f64::from(u8::from(i % 20 != 0))).collect();
    assert_eq!(quantile_cuts(&mostly_one, PSI_BINS), vec![0.0]);
    let even: Vec<f64> = (0..200).map(|i| f64::from(i % 2)).collect();
    assert_eq!(quantile_cuts(&even, PSI_BINS), vec![0.0]);
}

#[test]
fn ties_merge_into_fewer_bins() {
    // Half the mass on 5: one bin for it, deciles for the rest.
    let mut base: Vec<f64> = vec![5.0; 500];
    base.extend((0..500).map(|i| 10.0 + f64::from(i)));
    let cuts = quantile_cuts(&base, PSI_BINS);
    assert_eq!(cuts[0], 5.0);
    assert!(cuts.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(cuts.len(), 5);
}

#[test]
fn constant_baseline_gets_below_equal_and_above_bins() {
    let cuts = quantile_cuts(&[3.0; 50], PSI_BINS);
    assert_eq!(cuts.len(), 2);
    assert_eq!(bin_of(&cuts, 2.0), 0);
    assert_eq!(bin_of(&cuts, 3.0), 1);
    assert_eq!(bin_of(&cuts, 4.0), 2);
    assert_eq!(psi(&[3.0; 50], &[3.0; 20]), 0.0);
    assert!(psi(&[3.0; 50], &[4.0; 20]) > 1.0);
}

#[test]
fn empty_and_non_finite_inputs_do_not_break() {
    assert!(quantile_cuts(&[], PSI_BINS).is_empty());
    assert!(quantile_cuts(&[f64::NAN, f64::INFINITY], PSI_BINS).is_empty());
    assert_eq!(psi(&[], &[]), 0.0);
    assert!(psi(&[1.0, 2.0, f64::NAN], &[1.0, 2.0]).is_finite());
    assert_eq!(expected_psi(10, 0, 5), f64::INFINITY);
}

#[test]
fn psi_is_zero_for_identical_and_large_for_disjoint_samples() {
    let a: Vec<f64> = (0..200).map(f64::from).collect();
    assert!(psi(&a, &a).abs() < 1e-12);
    let b: Vec<f64> = (0..200).map(|i| 1000.0 + f64::from(i)).collect();
    assert!(psi(&a, &b) > 2.0, "{}", psi(&a, &b));
}

#[test]
fn psi_noise_matches_the_chi_square_approximation() {
    let mut rng = StdRng::seed_from_u64(7);
    let (n, m, trials) = (200, 100, 400);
    let mut total = 0.0;
    let mut above = 0;
    let threshold = psi_threshold(0.25, PSI_BINS, n, m);
    for _ in 0..trials {
        let base = sample(&mut rng, n, 200.0, 30.0);
        let win = sample(&mut rng, m, 200.0, 30.0);
        let v = psi(&base, &win);
        total += v;
        above += usize::from(v > threshold);
    }
    let mean = total / f64::from(trials);
    let expected = expected_psi(PSI_BINS, n, m);
    // The pseudo-count shrinks proportions a little, so the mean sits at or a bit under E.
    assert!(
        mean > 0.6 * expected && mean < 1.2 * expected,
        "{mean} vs {expected}"
    );
    assert_eq!(above, 0);
}

#[test]
fn a_shifted_mean_exceeds_the_threshold() {
    let mut rng = StdRng::seed_from_u64(8);
    let base = sample(&mut rng, 200, 200.0, 30.0);
    let win = sample(&mut rng, 50, 40.0, 10.0);
    assert!(psi(&base, &win) > psi_threshold(0.25, PSI_BINS, 200, 50));
    let win = sample(&mut rng, 200, 230.0, 30.0); // a one-sd shift
    assert!(psi(&base, &win) > psi_threshold(0.25, PSI_BINS, 200, 200));
}

#[test]
fn refusal_rate_shift_on_two_bins() {
    let base: Vec<f64> = (0..200).map(|i| f64::from(u8::from(i % 50 == 0))).collect();
    let same: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 50 == 7))).collect();
    let shifted: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 5 < 2))).collect();
    let t = psi_threshold(0.25, 2, 200, 100);
    assert!(psi(&base, &same) < 0.01);
    assert!(psi(&base, &shifted) > t, "{} vs {t}", psi(&base, &shifted));
}

fn unit(v: Vec<f64>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / norm) as f32).collect()
}

fn cluster(rng: &mut StdRng, center: &[f64], n: usize, spread: f64) -> VectorSum {
    let mut s = VectorSum::default();
    for _ in 0..n {
        let v: Vec<f64> = center
            .iter()
            .map(|c| c + normal(rng, 0.0, spread))
            .collect();
        assert!(s.add(&unit(v)));
    }
    s
}

#[test]
fn vector_sums_reject_mismatched_vectors_and_merge() {
    let mut a = VectorSum::default();
    assert!(a.add(&[1.0, 0.0]));
    assert!(!a.add(&[1.0, 0.0, 0.0]));
    assert!(!a.add(&[f32::NAN, 0.0]));
    assert!(!a.add(&[]));
    let mut b = VectorSum::default();
    assert!(b.add(&[0.0, 1.0]));
    a.merge(&b);
    assert_eq!(a.n, 2);
    assert_eq!(a.centroid(), vec![0.5, 0.5]);
    assert!((a.sq_norms - 2.0).abs() < 1e-12);
}

#[test]
fn cosine_distance_basics() {
    assert!(cosine_distance(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-12);
    assert!((cosine_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    assert!((cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-12);
    assert_eq!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
    assert_eq!(cosine_distance(&[1.0], &[1.0, 0.0]), 1.0);
}

#[test]
fn centroid_noise_predicts_the_no_drift_distance() {
    let mut rng = StdRng::seed_from_u64(9);
    let dim = 32;
    let center: Vec<f64> = (0..dim).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    let (n, m, trials) = (200, 50, 200);
    let mut total = 0.0;
    let mut predicted = 0.0;
    for _ in 0..trials {
        let base = cluster(&mut rng, &center, n, 0.2);
        let win = cluster(&mut rng, &center, m, 0.2);
        total += cosine_distance(&base.centroid(), &win.centroid());
        predicted += centroid_noise(&base, m);
    }
    let (mean, predicted) = (total / f64::from(trials), predicted / f64::from(trials));
    // σ² stands in for σ⊥², so the prediction is an upper bound close to the truth.
    assert!(
        mean < predicted && mean > 0.7 * predicted,
        "{mean} vs {predicted}"
    );
}

#[test]
fn centroid_shift_exceeds_the_threshold_and_noise_does_not() {
    let mut rng = StdRng::seed_from_u64(10);
    let a: Vec<f64> = (0..16).map(|i| if i < 8 { 1.0 } else { 0.0 }).collect();
    let b: Vec<f64> = (0..16).map(|i| if i >= 8 { 1.0 } else { 0.0 }).collect();
    let base = cluster(&mut rng, &a, 200, 0.3);
    let same = cluster(&mut rng, &a, 50, 0.3);
    let other = cluster(&mut rng, &b, 50, 0.3);
    let t = centroid_threshold(0.15, &base, 50);
    assert!(t > 0.15 && t < 0.3, "{t}");
    assert!(cosine_distance(&base.centroid(), &same.centroid()) < t);
    assert!(cosine_distance(&base.centroid(), &other.centroid()) > t);
}

#[test]
fn centroid_noise_is_infinite_when_the_mean_is_noise() {
    // Antipodal vectors: the centroid is zero, its direction meaningless.
    let mut s = VectorSum::default();
    for i in 0..100 {
        let x = if i % 2 == 0 { 1.0 } else { -1.0 };
        assert!(s.add(&[x, 0.0]));
    }
    assert_eq!(centroid_noise(&s, 50), f64::INFINITY);
    assert_eq!(centroid_noise(&VectorSum::default(), 50), f64::INFINITY);
}
