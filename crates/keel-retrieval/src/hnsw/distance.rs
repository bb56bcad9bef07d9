//! Similarity kernel: the dot product of two L2-normalised vectors (= cosine).
//!
//! Written as a plain loop over 32-float chunks with 32 independent lanes, so LLVM turns it
//! into vector code (4 × 8-wide accumulators with AVX2, 2 × 16 with AVX-512) without `unsafe`
//! or intrinsics. The lanes are summed only at the end, so no floating-point reassociation is
//! needed for that. About 30 ns for 384 dimensions on the (busy) 2-core dev machine.

const LANES: usize = 32;

/// `a · b` over the common prefix of the two slices (callers pass equal lengths).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((s, xi), yi) in acc.iter_mut().zip(x).zip(y) {
            *s = fmadd(*xi, *yi, *s);
        }
    }
    let mut tail = 0.0f32;
    for (xi, yi) in ca.remainder().iter().zip(cb.remainder()) {
        tail = fmadd(*xi, *yi, tail);
    }
    // A plain sum: a hand-written pairwise reduction (32 -> 8 -> 1) made LLVM's SLP vectoriser
    // fall back to 2-wide shuffles for the whole loop, twice as slow.
    acc.iter().sum::<f32>() + tail
}

/// `a * b + c`: one fused instruction where the target has FMA (a compile-time choice; without
/// the feature `mul_add` would be a slow library call, so plain arithmetic is used instead).
#[inline(always)]
fn fmadd(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(target_feature = "fma") {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[cfg(test)]
mod tests {
    use super::dot;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn hnsw_dot_matches_naive_for_every_length() {
        for n in 0..100 {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 3 % 11) as f32 - 5.0) / 7.0).collect();
            let got = f64::from(dot(&a, &b));
            assert!(
                (got - naive(&a, &b)).abs() < 1e-4,
                "n={n}: {got} vs {}",
                naive(&a, &b)
            );
        }
    }
}
