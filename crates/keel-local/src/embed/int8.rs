//! Dense layers in 8-bit integers with AVX-512 VNNI, for callers that trade a little
//! accuracy for speed (the injection guard's embedding; see `EmbedPrecision::Int8`).
//!
//! One `vpdpbusd` multiplies 64 unsigned bytes by 64 signed bytes and adds each group of
//! four products into one of 16 i32 lanes: 64 multiply-adds per instruction against 16 for
//! an f32 FMA, and the weights take a quarter of the bytes (the few-token passes of a short
//! prompt are bound by streaming them from memory).
//!
//! Quantization (symmetric, computed in f32):
//! - weights once, per output column: `w ≈ s_c · q` with `q` in `-127..=127`,
//!   `s_c = max|w_c| / 127`;
//! - inputs per call, per row: `x ≈ s_r · p` with `p` in `-127..=127`, stored as the
//!   unsigned byte `p + 128` (the instruction wants one operand unsigned); the `+ 128`
//!   is taken back out exactly as `128 · Σ_k q` per column, so
//!   `y = s_r · s_c · (Σ (p + 128) q − 128 Σ q) + b`, the integer sum exact in i32.
//!
//! Layout: the weight is cut into panels of [`NR`] columns; a panel holds, for each group of
//! four inputs, the columns' four bytes side by side (`ceil(k / 4) × NR × 4` bytes), which
//! is the order two 64-byte loads feed `vpdpbusd`. Inputs are rows of `ceil(k / 4) · 4`
//! bytes (padding bytes mean zero: 128); one row's four bytes are broadcast to all lanes.
//!
//! The kernel needs `unsafe` for the vector loads and for calling code compiled for
//! features the baseline target lacks; [`available`] checks the CPU first, and every load's
//! extent is asserted against its slice before the loop.

use std::cell::RefCell;
use std::sync::OnceLock;

/// Output columns per panel: two registers of 16 i32 lanes.
const NR: usize = 32;
/// Rows computed together: 2 × MR accumulator registers of the 32.
pub(super) const MR: usize = 8;
/// Rows per cache block: their quantized inputs stay in L2 while the panels stream by.
const MB: usize = 96;
/// Bytes of one panel's group of four inputs.
const GROUP_BYTES: usize = NR * 4;

/// Whether this CPU runs the VNNI kernel (AVX-512 F, BW and VNNI).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// A weight quantized to int8 and packed into panels (see the module docs).
pub(crate) struct QuantWeight {
    k: usize,
    n: usize,
    /// `ceil(k / 4)`.
    groups: usize,
    panels: Vec<i8>,
    /// Per column (padded to whole panels): the dequantization scale.
    scale: Vec<f32>,
    /// Per column (padded): `128 · Σ_k q`, the unsigned offset's contribution.
    offset: Vec<i32>,
}

thread_local! {
    /// Per-thread quantized inputs and row scales, reused across calls.
    static INPUT: RefCell<(Vec<u8>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl QuantWeight {
    /// Quantizes and packs a PyTorch-layout weight (`n` rows of `k` inputs, row-major).
    pub(crate) fn pack(weight: &[f32], n: usize, k: usize) -> Self {
        let groups = k.div_ceil(4);
        let count = n.div_ceil(NR);
        let mut panels = vec![0i8; count * groups * GROUP_BYTES];
        let mut scale = vec![0.0f32; count * NR];
        let mut offset = vec![0i32; count * NR];
        // One column's bytes in input order (padded to whole groups with zeros), then copied
        // four at a time into the panel: the quantizing loop stays contiguous, so it
        // vectorises (this runs per call for attention keys, `attention::head`, where a
        // byte-by-byte scatter showed at ~6 % of a guard pass).
        let mut column = vec![0i8; groups * 4];
        for (col, w) in weight.chunks_exact(k).take(n).enumerate() {
            let max = max_abs(w);
            // Non-finite columns quantize to zero rather than to garbage.
            let (s, inv) = if max > 0.0 && max.is_finite() {
                (max / 127.0, 127.0 / max)
            } else {
                (1.0, 0.0)
            };
            scale[col] = s;
            // A multiply and `round_magic` in place of a division and `round()`.
            for (q, &v) in column.iter_mut().zip(w) {
                *q = round_magic(v * inv).clamp(-127, 127) as i8;
            }
            offset[col] = 128 * column.iter().map(|&q| i32::from(q)).sum::<i32>();
            let panel = &mut panels[(col / NR) * groups * GROUP_BYTES..][..groups * GROUP_BYTES];
            let c = col % NR;
            for (group, four) in panel
                .chunks_exact_mut(GROUP_BYTES)
                .zip(column.chunks_exact(4))
            {
                group[c * 4..][..4].copy_from_slice(four);
            }
        }
        Self {
            k,
            n,
            groups,
            panels,
            scale,
            offset,
        }
    }

    /// `out = x Wᵀ + bias` for `x` of `rows × k` and `out` of `rows × n`, on this thread.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32], bias: &[f32]) {
        assert!(available(), "the int8 kernel needs AVX-512 VNNI");
        let (k, n) = (self.k, self.n);
        let rows = (x.len() / k).min(out.len() / n);
        let width = self.groups * 4;
        INPUT.with(|cell| {
            let (input, scales) = &mut *cell.borrow_mut();
            input.clear();
            input.resize(rows * width, 128);
            scales.clear();
            for (row, dst) in x.chunks_exact(k).zip(input.chunks_exact_mut(width)) {
                scales.push(quantize_row(row, dst));
            }
            for (b, ob) in out[..rows * n].chunks_mut(MB * n).enumerate() {
                let block_rows = ob.len() / n;
                let xb = &input[b * MB * width..][..block_rows * width];
                let sb = &scales[b * MB..][..block_rows];
                for (p, panel) in self
                    .panels
                    .chunks_exact(self.groups * GROUP_BYTES)
                    .enumerate()
                {
                    let col = p * NR;
                    let cols = NR.min(n - col);
                    let columns = Columns {
                        scale: &self.scale[col..col + NR],
                        offset: &self.offset[col..col + NR],
                        bias: &bias[col..col + cols],
                    };
                    for t in 0..block_rows.div_ceil(MR) {
                        let r = MR.min(block_rows - t * MR);
                        let xt = &xb[t * MR * width..][..r * width];
                        let rows = Rows {
                            scale: &sb[t * MR..][..r],
                            out: &mut ob[t * MR * n + col..],
                            stride: n,
                        };
                        products(xt, width, panel, &columns, rows);
                    }
                }
            }
        });
    }
}

/// Quantizes one row into `dst` (`p + 128` per value, `dst` pre-filled with 128 past the
/// row) and returns its scale.
fn quantize_row(row: &[f32], dst: &mut [u8]) -> f32 {
    let max = max_abs(row);
    if max == 0.0 || !max.is_finite() {
        dst[..row.len()].fill(128);
        return 0.0;
    }
    let inv = 127.0 / max;
    for (d, &v) in dst.iter_mut().zip(row) {
        *d = (round_magic(v * inv) + 128) as u8;
    }
    max / 127.0
}

/// The largest `|x|` of `xs` (0 when empty), ignoring NaNs, in 16 independent lanes with
/// a plain compare: a fold over `f32::max` stays scalar for the 32-value rows of attention
/// heads and carries NaN fix-ups elsewhere, which showed at a quarter of quantizing a row.
fn max_abs(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            let a = x.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    for &x in tail {
        let a = x.abs();
        lanes[0] = if a > lanes[0] { a } else { lanes[0] };
    }
    lanes.iter().fold(0.0f32, |m, &x| if x > m { x } else { m })
}

/// `x` rounded to the nearest integer (ties to even) for `|x| ≤ 2²²`: adding 1.5 · 2²³
/// lands the integer in the low mantissa bits, which vectorises where `round()` and a
/// saturating cast do not. NaN maps to an arbitrary value; callers pass finite inputs.
#[inline(always)]
fn round_magic(x: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// One panel's columns as the kernel's epilogue reads them: [`NR`] scales and offsets (the
/// packed weight pads both to whole panels) and the biases of its `bias.len()` ≤ NR real
/// columns.
struct Columns<'a> {
    scale: &'a [f32],
    offset: &'a [i32],
    bias: &'a [f32],
}

/// A tile's rows: their input scales (one per row) and where the outputs go, row `i`'s
/// columns at `out[i · stride..]`.
struct Rows<'a> {
    scale: &'a [f32],
    out: &'a mut [f32],
    stride: usize,
}

/// `rows.scale.len()` input rows (stride `width` bytes in `xt`) times one panel,
/// dequantized: `out = s_row · s_col · (Σ (p + 128) q − offset) + bias` for the panel's
/// real columns.
fn products(xt: &[u8], width: usize, panel: &[i8], columns: &Columns<'_>, rows: Rows<'_>) {
    let groups = width / 4;
    let r = rows.scale.len();
    let cols = columns.bias.len();
    assert!(panel.len() >= groups * GROUP_BYTES);
    assert!((1..=MR).contains(&r) && xt.len() >= r * width);
    assert!(columns.scale.len() == NR && columns.offset.len() == NR && cols <= NR);
    assert!(rows.out.len() >= (r - 1) * rows.stride + cols);
    // SAFETY: `available()` was checked by the caller (`forward` asserts it); the slices
    // were just checked to hold every byte the kernel reads and writes.
    #[allow(unsafe_code)]
    unsafe {
        match r {
            8 => vnni::block::<8>(xt, width, panel, groups, columns, rows),
            7 => vnni::block::<7>(xt, width, panel, groups, columns, rows),
            6 => vnni::block::<6>(xt, width, panel, groups, columns, rows),
            5 => vnni::block::<5>(xt, width, panel, groups, columns, rows),
            4 => vnni::block::<4>(xt, width, panel, groups, columns, rows),
            3 => vnni::block::<3>(xt, width, panel, groups, columns, rows),
            2 => vnni::block::<2>(xt, width, panel, groups, columns, rows),
            _ => vnni::block::<1>(xt, width, panel, groups, columns, rows),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod vnni {
    use super::{Columns, GROUP_BYTES, Rows};
    use std::arch::x86_64::*;

    /// `R` rows × one panel over `groups` groups of four inputs, dequantized into
    /// `rows.out` straight from the registers.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VNNI; `xt` holds `R` rows of `width ≥ 4 · groups` bytes;
    /// `panel` holds `groups · GROUP_BYTES` bytes; `rows.scale.len() == R`; `columns`
    /// holds NR scales and offsets and `c = columns.bias.len() ≤ NR` biases; `rows.out`
    /// holds `(R − 1) · rows.stride + c` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn block<const R: usize>(
        xt: &[u8],
        width: usize,
        panel: &[i8],
        groups: usize,
        columns: &Columns<'_>,
        rows: Rows<'_>,
    ) {
        let mut sums = [[_mm512_setzero_si512(); 2]; R];
        let (x, w) = (xt.as_ptr(), panel.as_ptr());
        for g in 0..groups {
            // SAFETY (all loads): g < groups, so the panel bytes `g · GROUP_BYTES ..+ 128`
            // and each row's bytes `r · width + 4g ..+ 4` are inside the slices.
            let w0 = unsafe { _mm512_loadu_si512(w.add(g * GROUP_BYTES).cast()) };
            let w1 = unsafe { _mm512_loadu_si512(w.add(g * GROUP_BYTES + 64).cast()) };
            for (r, s) in sums.iter_mut().enumerate() {
                let four = unsafe { x.add(r * width + g * 4).cast::<i32>().read_unaligned() };
                let a = _mm512_set1_epi32(four);
                s[0] = _mm512_dpbusd_epi32(s[0], a, w0);
                s[1] = _mm512_dpbusd_epi32(s[1], a, w1);
            }
        }
        // Epilogue, 16 columns at a time: scales and offsets are padded to NR, so only the
        // bias loads and the stores are masked to the real columns.
        let cols = columns.bias.len();
        let (sp, op, bp) = (
            columns.scale.as_ptr(),
            columns.offset.as_ptr(),
            columns.bias.as_ptr(),
        );
        let out = rows.out.as_mut_ptr();
        for h in 0..2 {
            let real = cols.saturating_sub(h * 16).min(16);
            let mask = ((1u32 << real) - 1) as __mmask16;
            // SAFETY: scale and offset hold NR values; masked-off lanes are neither read
            // from the bias nor written to `out`, and masked accesses do not fault there.
            let scale = unsafe { _mm512_loadu_ps(sp.add(h * 16)) };
            let offset = unsafe { _mm512_loadu_si512(op.add(h * 16).cast()) };
            let bias = unsafe { _mm512_maskz_loadu_ps(mask, bp.add(h * 16)) };
            for (r, s) in sums.iter().enumerate() {
                let row_scale = _mm512_set1_ps(rows.scale[r]);
                let x = _mm512_cvtepi32_ps(_mm512_sub_epi32(s[h], offset));
                let y = _mm512_fmadd_ps(_mm512_mul_ps(row_scale, scale), x, bias);
                unsafe { _mm512_mask_storeu_ps(out.add(r * rows.stride + h * 16), mask, y) };
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod vnni {
    pub(super) unsafe fn block<const R: usize>(
        _: &[u8],
        _: usize,
        _: &[i8],
        _: usize,
        _: &super::Columns<'_>,
        _: super::Rows<'_>,
    ) {
        unreachable!("the int8 kernel is only built for x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5)
            .collect()
    }

    #[test]
    fn quantized_rows_round_to_the_nearest_step() {
        let row = [0.5f32, -1.0, 0.25, 0.0, 1.0 / 254.0 * 1.01];
        let mut dst = [0u8; 8];
        dst[5..].fill(128);
        let s = quantize_row(&row, &mut dst);
        assert_eq!(s, 1.0 / 127.0);
        // 0.5·127 = 63.5 rounds to even (64), -127, 31.75 → 32, 0, 0.505 → 1.
        assert_eq!(dst, [128 + 64, 1, 128 + 32, 128, 129, 128, 128, 128]);
    }

    #[test]
    fn integer_sums_match_the_dequantized_product_exactly() {
        // Every value is a multiple of its row's or column's scale (each row and column
        // holds its maximum ±127 steps first), so quantization is lossless and the result
        // must equal the f64 product up to f32 rounding: this checks the layout, the offset
        // correction and the ragged edges (k % 4, rows % MR, n % NR).
        if !available() {
            return;
        }
        let grid = |len: usize, k: usize, mul: usize, step: f32| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    let q = if i % k == 0 {
                        127
                    } else {
                        (i * mul % 255) as i32 - 127
                    };
                    q as f32 * step
                })
                .collect()
        };
        for (rows, n, k) in [(1, 1, 1), (9, 33, 7), (17, 70, 130), (100, 40, 384)] {
            let x = grid(rows * k, k, 37, 1.0 / 127.0);
            let w = grid(n * k, k, 53, 1.0 / 64.0);
            let b = pseudo(n, 3.0);
            let q = QuantWeight::pack(&w, n, k);
            let mut out = vec![f32::NAN; rows * n];
            q.forward(&x, &mut out, &b);
            for i in 0..rows {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]))
                        .sum::<f64>()
                        + f64::from(b[j]);
                    let got = f64::from(out[i * n + j]);
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{rows}x{n}x{k} [{i},{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn error_stays_within_one_quantization_step_per_product() {
        // Random values: each operand is off by at most half a step (its row's or column's
        // maximum / 127), so an output is off by at most
        // Σ_k (½ s_r |w_k| + ½ s_c |x_k| + ¼ s_r s_c).
        if !available() {
            return;
        }
        let (rows, n, k) = (20, 96, 384);
        let x = pseudo(rows * k, 1.0);
        let w = pseudo(n * k, 2.0);
        let b = vec![0.0; n];
        let q = QuantWeight::pack(&w, n, k);
        let mut out = vec![0.0f32; rows * n];
        q.forward(&x, &mut out, &b);
        let step = |v: &[f32]| f64::from(v.iter().fold(0.0f32, |m, a| m.max(a.abs()))) / 127.0;
        let (mut worst, mut worst_bound) = (0.0f64, 0.0f64);
        for (i, xr) in x.chunks_exact(k).enumerate() {
            for (j, wc) in w.chunks_exact(k).enumerate() {
                let (sr, sc) = (step(xr), step(wc));
                let mut want = 0.0f64;
                let mut bound = 0.0f64;
                for (&a, &c) in xr.iter().zip(wc) {
                    let (a, c) = (f64::from(a), f64::from(c));
                    want += a * c;
                    bound += 0.5 * sr * c.abs() + 0.5 * sc * a.abs() + 0.25 * sr * sc;
                }
                let err = (f64::from(out[i * n + j]) - want).abs();
                assert!(err <= bound + 1e-5, "[{i},{j}] error {err} > {bound}");
                worst = worst.max(err);
                worst_bound = worst_bound.max(bound);
            }
        }
        // And the errors cancel like a random walk instead of adding up to the bound.
        assert!(
            worst < worst_bound / 4.0,
            "worst error {worst} of {worst_bound}"
        );
    }

    #[test]
    fn zero_rows_give_the_bias() {
        if !available() {
            return;
        }
        let (n, k) = (5, 8);
        let q = QuantWeight::pack(&pseudo(n * k, 1.0), n, k);
        let b = pseudo(n, 2.0);
        let mut out = vec![f32::NAN; 2 * n];
        q.forward(&[0.0; 16], &mut out, &b);
        assert_eq!(&out[..n], &b[..]);
        assert_eq!(&out[n..], &b[..]);
    }

    #[test]
    fn max_abs_sees_every_lane_and_the_tail_and_skips_nans() {
        assert_eq!(max_abs(&[]), 0.0);
        for len in [1, 15, 16, 17, 32, 47, 100] {
            for at in 0..len {
                let mut xs = pseudo(len, 3.0);
                xs[at] = -7.5;
                assert_eq!(max_abs(&xs), 7.5, "len {len}, largest at {at}");
                xs[(at + 1) % len] = f32::NAN;
                if len > 1 {
                    assert_eq!(max_abs(&xs), 7.5, "len {len}, NaN after {at}");
                }
            }
        }
        assert_eq!(max_abs(&[1.0, f32::NEG_INFINITY, 2.0]), f32::INFINITY);
    }
}
