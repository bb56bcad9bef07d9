//! Elementwise and row kernels of the BERT forward pass: `exp`, GELU, layer norm, softmax,
//! dot products. Written as branch-free loops over plain slices so the compiler vectorises
//! them (the calls to the C library's `expf` in a naive version cost more than the
//! attention matmuls for short texts).

/// Lanes of the independent accumulators used by reductions: wide enough for one AVX-512
/// register, and a reduction order the compiler may keep without `-ffast-math`.
const LANES: usize = 16;

/// `e^x` for f32, relative error below 2e-7 on [-87, 88]; inputs below saturate to ~0
/// and above to ~e^88. Branch-free (vectorises).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln2) by the 1.5·2²³ trick: adding it leaves n in the low mantissa bits
    // (round to nearest even). Unlike `round()` and an `as i32` cast (which saturates, with
    // a NaN check), these are plain float and integer ops, so loops over `exp` vectorise.
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two for an exact product n * ln2.
    // Fused multiply-adds (one instruction each with the native target's FMA).
    let r = n.mul_add(-1.428_606_8e-6, n.mul_add(-0.693_145_75, x));
    // exp(r) on [-ln2/2, ln2/2]: degree-6 Taylor polynomial (error < 2e-8 relative).
    let p = r.mul_add(1.0 / 720.0, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r, 1.0);
    let p = p.mul_add(r, 1.0);
    // 2^n by building the exponent field; n is in [-126, 127] after the clamp.
    let biased = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    p * scale
}

/// The error function, absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// The activation between a BERT layer's two feed-forward matmuls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `x * Φ(x)` with the exact normal CDF (BERT's "gelu").
    Gelu,
    /// The tanh approximation ("gelu_new" / "gelu_pytorch_tanh").
    GeluTanh,
    Relu,
}

impl Activation {
    /// Applies the activation in place.
    pub(crate) fn apply(self, xs: &mut [f32]) {
        match self {
            Activation::Gelu => {
                for x in xs {
                    *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
            Activation::GeluTanh => {
                const C: f32 = 0.797_884_6; // sqrt(2 / pi)
                for x in xs {
                    let u = C * (*x + 0.044_715 * *x * *x * *x);
                    // tanh(u) = 1 - 2 / (e^{2u} + 1)
                    let tanh = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
                    *x = 0.5 * *x * (1.0 + tanh);
                }
            }
            Activation::Relu => {
                for x in xs {
                    *x = x.max(0.0);
                }
            }
        }
    }
}

/// Sum of `a[i] * b[i]` over the shorter length, in [`LANES`] independent partial sums.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    for (x, y) in ca.iter().zip(cb) {
        for ((a, x), y) in acc.iter_mut().zip(x).zip(y) {
            *a = x.mul_add(*y, *a);
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x` over the shorter length.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// Softmax of one row in place. The max and the sum are taken in [`LANES`] partial
/// results so that every loop vectorises.
pub(crate) fn softmax(row: &mut [f32]) {
    let inv = softmax_unscaled(row);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// The first half of [`softmax`]: `row[i] = e^(row[i] - max)`, returning `1 / Σ row` for the
/// caller to scale by where it next reads the row (one pass fewer).
pub(crate) fn softmax_unscaled(row: &mut [f32]) -> f32 {
    if super::simd::available() {
        super::simd::softmax_unscaled(row)
    } else {
        softmax_unscaled_portable(row)
    }
}

/// [`softmax_unscaled`] in portable code (which the compiler vectorises at the target's
/// preferred width).
pub(crate) fn softmax_unscaled_portable(row: &mut [f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let (chunks, tail) = row.as_chunks::<LANES>();
    for c in chunks {
        for (m, x) in lanes.iter_mut().zip(c) {
            *m = m.max(*x);
        }
    }
    let max = lanes
        .iter()
        .chain(tail)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut acc = [0.0f32; LANES];
    let (chunks, tail) = row.as_chunks_mut::<LANES>();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c.iter_mut()) {
            *x = exp(*x - max);
            *a += *x;
        }
    }
    for x in tail.iter_mut() {
        *x = exp(*x - max);
    }
    1.0 / (acc.iter().sum::<f32>() + tail.iter().sum::<f32>())
}

/// Sum of `f(x)` over `xs` in f64, in [`LANES`] partial sums.
fn sum_f64(xs: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (chunks, tail) = xs.as_chunks::<LANES>();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += f(f64::from(*x));
        }
    }
    acc.iter().sum::<f64>() + tail.iter().map(|x| f(f64::from(*x))).sum::<f64>()
}

/// Layer norm of every `gamma.len()`-wide row of `xs` in place: `(x - mean) / sqrt(var +
/// eps) * gamma + beta`, mean and variance in f64 over the row.
pub(crate) fn layer_norm(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) {
    let width = gamma.len();
    if width == 0 {
        return;
    }
    for row in xs.chunks_exact_mut(width) {
        let mean = sum_f64(row, |x| x) / width as f64;
        let var = sum_f64(row, |x| (x - mean) * (x - mean)) / width as f64;
        let inv = (1.0 / (var + eps).sqrt()) as f32;
        let mean = mean as f32;
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_float_precision() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(f32::NEG_INFINITY) >= 0.0 && exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn gelu_matches_the_exact_definition() {
        // Reference erf by its Maclaurin series in f64 (converges well on |x| <= 3).
        fn erf_ref(x: f64) -> f64 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        }
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 100.0).collect();
        let mut ys = xs.clone();
        Activation::Gelu.apply(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let x64 = f64::from(x);
            let want = 0.5 * x64 * (1.0 + erf_ref(x64 / 2f64.sqrt()));
            assert!(
                (f64::from(y) - want).abs() < 1e-6,
                "gelu({x}) = {y}, want {want}"
            );
        }
        // Large inputs: identity on the right, zero on the left.
        let mut big = [30.0f32, -30.0];
        Activation::Gelu.apply(&mut big);
        assert_eq!(big, [30.0, 0.0]);
    }

    #[test]
    fn gelu_tanh_and_relu() {
        let mut ys = [-2.0f32, -0.5, 0.0, 0.5, 2.0];
        Activation::GeluTanh.apply(&mut ys);
        for (x, y) in [-2.0f64, -0.5, 0.0, 0.5, 2.0].iter().zip(ys) {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            let want = 0.5 * x * (1.0 + u.tanh());
            assert!((f64::from(y) - want).abs() < 1e-6);
        }
        let mut ys = [-2.0f32, 0.0, 3.0];
        Activation::Relu.apply(&mut ys);
        assert_eq!(ys, [0.0, 0.0, 3.0]);
    }

    #[test]
    fn dot_and_axpy_handle_tails() {
        for n in [0usize, 1, 15, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-5, "n = {n}");
            let mut y = b.clone();
            axpy(2.0, &a, &mut y);
            for ((y, b), a) in y.iter().zip(&b).zip(&a) {
                assert_eq!(*y, b + 2.0 * a);
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = [1.0f32, 3.0, -2.0, 3.0, f32::MIN];
        softmax(&mut row);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(row[1] > row[0] && row[0] > row[2] && row[4] < 1e-30);
        assert_eq!(row[1], row[3]);
        let e = 1f64.exp() + 2.0 * 3f64.exp() + (-2f64).exp();
        assert!((f64::from(row[0]) - 1f64.exp() / e).abs() < 1e-6);
    }

    #[test]
    fn layer_norm_normalises_each_row() {
        let mut xs = vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
        layer_norm(&mut xs, &[1.0, 1.0, 2.0, 1.0], &[0.0, 0.0, 0.0, 0.5], 1e-12);
        // Row 1: mean 2.5, std sqrt(1.25).
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s, -0.5 / s, 2.0 * 0.5 / s, 1.5 / s + 0.5];
        for (g, w) in xs[..4].iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // A constant row maps to beta.
        assert_eq!(&xs[4..], &[0.0, 0.0, 0.0, 0.5]);
    }
}
