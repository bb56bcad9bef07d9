//! AVX-512 versions of two f32 loops the compiler leaves at half width: LLVM tunes these
//! CPUs to prefer 256-bit vectors, so the portable panel product ([`super::matmul`]) and the
//! softmax exponentials ([`super::kernels`]) come out as `ymm` code, and together they are
//! about a sixth of a long text's pass. Here they run on 512-bit registers.
//!
//! Each does the portable version's operations in the same order per lane (the same fused
//! multiply-adds, the same partial sums), so the results are bitwise the same, which the
//! tests check; only the speed differs. The dispatchers [`super::matmul::products`] and
//! [`super::kernels::softmax_unscaled`] pick this path when [`available`].
//!
//! The kernels need `unsafe` for the vector loads and stores and for calling code compiled
//! for features the baseline target lacks; every pointer offset stays below a length
//! computed from the slices just before the loop.

use super::matmul::NR;
use std::sync::OnceLock;

/// Whether this CPU runs the 512-bit kernels (AVX-512 F).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// [`super::matmul::products_portable`] on 512-bit registers (rows interleaved, `xt[t · R
/// + r]`); the caller checked [`available`].
pub(crate) fn products<const R: usize>(xt: &[f32], panel: &[f32]) -> [[f32; NR]; R] {
    let steps = (xt.len() / R).min(panel.len() / NR);
    strided::<R>(xt, 1, R, steps, panel)
}

/// [`super::matmul::products_rows_portable`] on 512-bit registers (rows where they lie,
/// `rows[r · width + t]`); the caller checked [`available`].
pub(crate) fn products_rows<const R: usize>(
    rows: &[f32],
    width: usize,
    len: usize,
    panel: &[f32],
) -> [[f32; NR]; R] {
    strided::<R>(rows, width, 1, len, panel)
}

/// `Σ_{t < steps} x[r · row_stride + t · step_stride] · panel[t · NR + c]` per row `r` and
/// column `c`, fused multiply-adds in `t` order.
fn strided<const R: usize>(
    x: &[f32],
    row_stride: usize,
    step_stride: usize,
    steps: usize,
    panel: &[f32],
) -> [[f32; NR]; R] {
    assert!(available(), "the 512-bit kernels need AVX-512 F");
    assert!(panel.len() >= steps * NR);
    assert!(steps == 0 || (R - 1) * row_stride + (steps - 1) * step_stride < x.len());
    // SAFETY: the CPU has AVX-512 F (just checked); the kernel reads x's values
    // `r · row_stride + t · step_stride` and the panel's `t · NR ..+ NR` for `r < R`,
    // `t < steps`, inside the slices by the assertions above.
    #[allow(unsafe_code)]
    unsafe {
        zmm::strided::<R>(x, row_stride, step_stride, steps, panel)
    }
}

/// [`super::kernels::softmax_unscaled_portable`] on 512-bit registers; the caller checked
/// [`available`].
pub(crate) fn softmax_unscaled(row: &mut [f32]) -> f32 {
    assert!(available(), "the 512-bit kernels need AVX-512 F");
    // SAFETY: as in `products`.
    #[allow(unsafe_code)]
    let (lanes_max, chunks) = unsafe { zmm::lane_max(row) };
    let max = lanes_max
        .iter()
        .chain(&row[chunks * 16..])
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    // SAFETY: as in `products`.
    #[allow(unsafe_code)]
    let lanes_sum = unsafe { zmm::exp_in_place(row, max) };
    let tail = &mut row[chunks * 16..];
    for x in tail.iter_mut() {
        *x = super::kernels::exp(*x - max);
    }
    1.0 / (lanes_sum.iter().sum::<f32>() + tail.iter().sum::<f32>())
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) mod zmm {
    use super::NR;
    use std::arch::x86_64::*;

    const _: () = assert!(NR == 32, "a panel row is two 16-lane registers");

    /// [`super::strided`]'s sums.
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `x` holds every `r · row_stride + t · step_stride` and `panel`
    /// every `t · NR ..+ NR` for `r < R`, `t < steps`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn strided<const R: usize>(
        x: &[f32],
        row_stride: usize,
        step_stride: usize,
        steps: usize,
        panel: &[f32],
    ) -> [[f32; NR]; R] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let (x, w) = (x.as_ptr(), panel.as_ptr());
        for t in 0..steps {
            // SAFETY: within both slices by the caller's contract.
            let w0 = unsafe { _mm512_loadu_ps(w.add(t * NR)) };
            let w1 = unsafe { _mm512_loadu_ps(w.add(t * NR + 16)) };
            for (r, a) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(unsafe { *x.add(r * row_stride + t * step_stride) });
                a[0] = _mm512_fmadd_ps(b, w0, a[0]);
                a[1] = _mm512_fmadd_ps(b, w1, a[1]);
            }
        }
        spill(&acc)
    }

    /// `R` rows of two 16-lane accumulators as `R × NR` values (shared with the bf16
    /// kernel, whose sums have the same shape).
    #[target_feature(enable = "avx512f")]
    pub(in super::super) fn spill<const R: usize>(acc: &[[__m512; 2]; R]) -> [[f32; NR]; R] {
        let mut out = [[0.0f32; NR]; R];
        for (o, a) in out.iter_mut().zip(acc) {
            // SAFETY: `o` holds NR = 32 values.
            unsafe {
                _mm512_storeu_ps(o.as_mut_ptr(), a[0]);
                _mm512_storeu_ps(o.as_mut_ptr().add(16), a[1]);
            }
        }
        out
    }

    /// The lane-wise maximum over `row`'s whole 16-value chunks, and how many there are.
    ///
    /// # Safety
    /// The CPU has AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lane_max(row: &[f32]) -> ([f32; 16], usize) {
        let chunks = row.len() / 16;
        let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in 0..chunks {
            // SAFETY: i < chunks, so `16·i + 16 ≤ row.len()`.
            m = _mm512_max_ps(m, unsafe { _mm512_loadu_ps(row.as_ptr().add(i * 16)) });
        }
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` holds 16 values.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), m) };
        (lanes, chunks)
    }

    /// `x = e^(x − max)` over `row`'s whole 16-value chunks (the operations of
    /// [`super::super::kernels::exp`], lane by lane) and the lane-wise sums of the results.
    ///
    /// # Safety
    /// The CPU has AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_in_place(row: &mut [f32], max: f32) -> [f32; 16] {
        const SHIFT: f32 = 12_582_912.0;
        let chunks = row.len() / 16;
        let splat = _mm512_set1_ps;
        let (max, shift) = (splat(max), splat(SHIFT));
        let mut sum = _mm512_setzero_ps();
        let p = row.as_mut_ptr();
        for i in 0..chunks {
            // SAFETY: i < chunks, so `16·i + 16 ≤ row.len()`.
            let x = _mm512_sub_ps(unsafe { _mm512_loadu_ps(p.add(i * 16)) }, max);
            let x = _mm512_min_ps(_mm512_max_ps(x, splat(-87.0)), splat(88.0));
            let t = _mm512_add_ps(_mm512_mul_ps(x, splat(std::f32::consts::LOG2_E)), shift);
            let n = _mm512_sub_ps(t, shift);
            let r = _mm512_fmadd_ps(n, splat(-0.693_145_75), x);
            let r = _mm512_fmadd_ps(n, splat(-1.428_606_8e-6), r);
            let mut q = _mm512_fmadd_ps(r, splat(1.0 / 720.0), splat(1.0 / 120.0));
            for c in [1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                q = _mm512_fmadd_ps(q, r, splat(c));
            }
            let biased = _mm512_add_epi32(
                _mm512_sub_epi32(
                    _mm512_castps_si512(t),
                    _mm512_set1_epi32(SHIFT.to_bits() as i32),
                ),
                _mm512_set1_epi32(127),
            );
            let e = _mm512_mul_ps(q, _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased)));
            // SAFETY: as for the load.
            unsafe { _mm512_storeu_ps(p.add(i * 16), e) };
            sum = _mm512_add_ps(sum, e);
        }
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` holds 16 values.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod zmm {
    use super::NR;

    pub(super) unsafe fn strided<const R: usize>(
        _: &[f32],
        _: usize,
        _: usize,
        _: usize,
        _: &[f32],
    ) -> [[f32; NR]; R] {
        unreachable!("the 512-bit kernels are only built for x86_64")
    }
    pub(super) unsafe fn lane_max(_: &[f32]) -> ([f32; 16], usize) {
        unreachable!("the 512-bit kernels are only built for x86_64")
    }
    pub(super) unsafe fn exp_in_place(_: &mut [f32], _: f32) -> [f32; 16] {
        unreachable!("the 512-bit kernels are only built for x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{kernels, matmul};
    use super::*;

    fn pseudo(len: usize, seed: f32, spread: f32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5) * spread)
            .collect()
    }

    #[test]
    fn products_are_bitwise_the_portable_ones() {
        if !available() {
            return;
        }
        fn check<const R: usize>(k: usize) {
            let xt = pseudo(k * R, 1.0, 2.0);
            let panel = pseudo(k * NR, 2.0, 2.0);
            let want = matmul::products_portable::<R>(&xt, &panel);
            let got = products::<R>(&xt, &panel);
            assert!(
                want.iter()
                    .flatten()
                    .zip(got.iter().flatten())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "R {R}, k {k}"
            );
        }
        for k in [0, 1, 7, 32, 384] {
            check::<1>(k);
            check::<2>(k);
            check::<3>(k);
            check::<4>(k);
        }
    }

    #[test]
    fn row_products_are_bitwise_the_portable_ones() {
        if !available() {
            return;
        }
        fn check<const R: usize>(len: usize, width: usize) {
            let rows = pseudo(R * width, 3.0, 2.0);
            let panel = pseudo(len * NR, 4.0, 2.0);
            let want = matmul::products_rows_portable::<R>(&rows, width, len, &panel);
            let got = products_rows::<R>(&rows, width, len, &panel);
            assert!(
                want.iter()
                    .flatten()
                    .zip(got.iter().flatten())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "R {R}, len {len}"
            );
        }
        for (len, width) in [(0, 1), (1, 1), (7, 9), (33, 40), (256, 256)] {
            check::<1>(len, width);
            check::<2>(len, width);
            check::<4>(len, width);
        }
    }

    #[test]
    fn softmax_is_bitwise_the_portable_one() {
        if !available() {
            return;
        }
        // Lengths around the 16-lane chunks; logits from nearly flat to past exp's clamp.
        for len in [1, 15, 16, 17, 33, 256, 300] {
            for spread in [0.1, 8.0, 400.0] {
                let row = pseudo(len, len as f32, spread);
                let (mut want, mut got) = (row.clone(), row);
                let inv_want = kernels::softmax_unscaled_portable(&mut want);
                let inv_got = softmax_unscaled(&mut got);
                assert_eq!(
                    inv_want.to_bits(),
                    inv_got.to_bits(),
                    "len {len} spread {spread}"
                );
                assert!(
                    want.iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "len {len} spread {spread}"
                );
            }
        }
    }
}
