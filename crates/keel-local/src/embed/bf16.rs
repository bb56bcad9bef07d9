//! The product of attention probabilities and values in bfloat16 with AVX-512 BF16, for the
//! int8 forward pass (`EmbedPrecision::Int8`): after the dense layers went to int8, the f32
//! `P V` of a 1 KB prompt was the largest part of its attention.
//!
//! One `vdpbf16ps` multiplies 16 pairs of bf16 values and adds both products of each pair
//! into one of 16 f32 lanes: twice the multiply-adds of an f32 FMA. The operands keep f32's
//! exponent range and 8 bits of mantissa (rounded to nearest even), so small probabilities
//! of attention spread over a long text survive, which 8-bit integers would drop; sums stay
//! in f32.
//!
//! Layouts (pairs of tokens are the instruction's pairs):
//! - a value panel: [`NR`] feature columns of one head over `pairs = ceil(len / 2)` token
//!   pairs, `[u · 2 · NR + 2c + i]` = value of token `2u + i`, feature `c` of the panel
//!   (zero past `len` or past the head's width);
//! - a probability row: `2 · pairs` bf16 values, zero past `len`.
//!
//! The kernels need `unsafe` for the vector loads and stores and for calling code compiled
//! for features the baseline target lacks; [`available`] checks the CPU, and every extent
//! is asserted against its slice before the loop.

use std::sync::OnceLock;

/// Feature columns per value panel: two registers of 16 f32 lanes.
pub(crate) const NR: usize = 32;

/// Whether this CPU runs the bf16 kernels (AVX-512 F, BW and BF16).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Writes one token pair of a value panel: `first` and `second` (`None` past the text's
/// end) are the pair's `cols` ≤ [`NR`] features of this panel; `dst` holds `2 · NR` values.
pub(crate) fn pack_pair(first: &[f32], second: Option<&[f32]>, cols: usize, dst: &mut [u16]) {
    assert!(available(), "the bf16 kernels need AVX-512 BF16");
    assert!(cols <= NR && first.len() >= cols && dst.len() >= 2 * NR);
    assert!(second.is_none_or(|s| s.len() >= cols));
    // SAFETY: the CPU has the features (just checked); the kernel reads `cols` values of
    // each row and writes `2 · NR` values, inside the slices by the assertions above.
    #[allow(unsafe_code)]
    unsafe {
        zmm::pack_pair(first, second, cols, dst)
    }
}

/// `dst[..src.len()]` = `src` rounded to bf16, zero after that.
pub(crate) fn round_row(src: &[f32], dst: &mut [u16]) {
    assert!(available(), "the bf16 kernels need AVX-512 BF16");
    assert!(dst.len() >= src.len());
    // SAFETY: as in `pack_pair`; the kernel writes `dst.len()` values and reads `src.len()`.
    #[allow(unsafe_code)]
    unsafe {
        zmm::round_row(src, dst)
    }
}

/// `Σ_u Σ_i probs[r · stride + 2u + i] · panel[u · 2 · NR + 2c + i]` per row `r < R` and
/// column `c < NR`, over `pairs` token pairs.
pub(crate) fn products<const R: usize>(
    probs: &[u16],
    stride: usize,
    pairs: usize,
    panel: &[u16],
) -> [[f32; NR]; R] {
    assert!(available(), "the bf16 kernels need AVX-512 BF16");
    assert!(panel.len() >= pairs * 2 * NR);
    assert!(pairs == 0 || (R - 1) * stride + 2 * pairs <= probs.len());
    // SAFETY: as in `pack_pair`; the kernel reads each row's `2 · pairs` probabilities and
    // the panel's `pairs · 2 · NR` values.
    #[allow(unsafe_code)]
    unsafe {
        zmm::products::<R>(probs, stride, pairs, panel)
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod zmm {
    use super::NR;
    use std::arch::x86_64::*;

    const _: () = assert!(NR == 32, "a panel row is two 16-lane registers");

    /// Bytes of the interleaving permutation: output `2c + i` takes input `c + 16 i` of the
    /// pair `[first's 16 | second's 16]` as `_mm512_cvtne2ps_pbh` lays them out.
    fn interleave() -> __m512i {
        let mut idx = [0i16; 32];
        for (j, v) in idx.iter_mut().enumerate() {
            *v = ((j / 2) + 16 * (j % 2)) as i16;
        }
        // SAFETY: `idx` is 64 bytes.
        unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/BF16; both rows hold `cols ≤ NR` values, `dst` `2 · NR`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn pack_pair(
        first: &[f32],
        second: Option<&[f32]>,
        cols: usize,
        dst: &mut [u16],
    ) {
        let idx = interleave();
        for h in 0..2 {
            let real = cols.saturating_sub(h * 16).min(16);
            let mask = ((1u32 << real) - 1) as __mmask16;
            // SAFETY: masked-off lanes are not read; the real ones are inside the rows.
            let a = unsafe { _mm512_maskz_loadu_ps(mask, first.as_ptr().add(h * 16)) };
            let b = match second {
                Some(s) => unsafe { _mm512_maskz_loadu_ps(mask, s.as_ptr().add(h * 16)) },
                None => _mm512_setzero_ps(),
            };
            // Lanes 0..16 = a, 16..32 = b, then interleaved into (a_c, b_c) pairs.
            // SAFETY: both are 64-byte vectors.
            let both: __m512i = unsafe { std::mem::transmute(_mm512_cvtne2ps_pbh(b, a)) };
            let pairs = _mm512_permutexvar_epi16(idx, both);
            // SAFETY: `dst` holds 2 · NR values; this writes 32 of them at 32 · h.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(h * 32).cast(), pairs) };
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/BF16; `dst.len() ≥ src.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn round_row(src: &[f32], dst: &mut [u16]) {
        let mut i = 0;
        while i < dst.len() {
            let real = src.len().saturating_sub(i).min(16);
            let room = (dst.len() - i).min(16);
            let (load, store) = (
                ((1u32 << real) - 1) as __mmask16,
                ((1u32 << room) - 1) as __mmask16,
            );
            // SAFETY: masked lanes only: `i + real ≤ src.len()`, `i + room ≤ dst.len()`.
            let x = unsafe { _mm512_maskz_loadu_ps(load, src.as_ptr().add(i)) };
            // SAFETY: both are 32-byte vectors.
            let b: __m256i = unsafe { std::mem::transmute(_mm512_cvtneps_pbh(x)) };
            unsafe { _mm256_mask_storeu_epi16(dst.as_mut_ptr().add(i).cast(), store, b) };
            i += 16;
        }
    }

    /// [`super::products`]' sums.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/BF16; `probs` holds `(R − 1) · stride + 2 · pairs` values
    /// and `panel` `pairs · 2 · NR`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn products<const R: usize>(
        probs: &[u16],
        stride: usize,
        pairs: usize,
        panel: &[u16],
    ) -> [[f32; NR]; R] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let (p, w) = (probs.as_ptr(), panel.as_ptr());
        for u in 0..pairs {
            // SAFETY (all loads): u < pairs, inside both slices by the caller's contract.
            // (The transmutes: between 64-byte vectors.)
            let w0: __m512bh =
                unsafe { std::mem::transmute(_mm512_loadu_si512(w.add(u * 2 * NR).cast())) };
            let w1: __m512bh =
                unsafe { std::mem::transmute(_mm512_loadu_si512(w.add(u * 2 * NR + NR).cast())) };
            for (r, a) in acc.iter_mut().enumerate() {
                let two = unsafe { p.add(r * stride + 2 * u).cast::<i32>().read_unaligned() };
                let b: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(two)) };
                a[0] = _mm512_dpbf16_ps(a[0], b, w0);
                a[1] = _mm512_dpbf16_ps(a[1], b, w1);
            }
        }
        super::super::simd::zmm::spill(&acc)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod zmm {
    use super::NR;

    pub(super) unsafe fn pack_pair(_: &[f32], _: Option<&[f32]>, _: usize, _: &mut [u16]) {
        unreachable!("the bf16 kernels are only built for x86_64")
    }
    pub(super) unsafe fn round_row(_: &[f32], _: &mut [u16]) {
        unreachable!("the bf16 kernels are only built for x86_64")
    }
    pub(super) unsafe fn products<const R: usize>(
        _: &[u16],
        _: usize,
        _: usize,
        _: &[u16],
    ) -> [[f32; NR]; R] {
        unreachable!("the bf16 kernels are only built for x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bf16 back to f32 (exact).
    fn widen(b: u16) -> f32 {
        f32::from_bits(u32::from(b) << 16)
    }

    /// Round to nearest even, as the instruction does for finite values.
    fn round(x: f32) -> u16 {
        let b = x.to_bits();
        ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
    }

    fn pseudo(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5)
            .collect()
    }

    #[test]
    fn rows_round_to_nearest_even_and_pad_with_zeros() {
        if !available() {
            return;
        }
        // 1 + 2⁻⁸ is a tie (rounds down to even 1.0), 1 + 3·2⁻⁸ a tie rounding up.
        let mut src = vec![1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -2.5e-30, 3.0e38];
        src.extend(pseudo(29, 0.3));
        let mut dst = vec![0xFFFFu16; 40];
        round_row(&src, &mut dst);
        assert_eq!(widen(dst[0]), 1.0);
        assert_eq!(widen(dst[1]), 1.0 + 4.0 / 256.0);
        for (i, (&d, &s)) in dst.iter().zip(&src).enumerate() {
            assert_eq!(d, round(s), "value {i}: {s}");
        }
        assert!(dst[src.len()..].iter().all(|&d| d == 0));
    }

    /// Products over odd lengths and partial panels against f64 sums of the rounded
    /// operands: the instruction's only error is its f32 accumulation.
    #[test]
    fn products_match_the_rounded_operands_sums() {
        if !available() {
            return;
        }
        fn check<const R: usize>(len: usize, cols: usize) {
            let values: Vec<Vec<f32>> = (0..len).map(|t| pseudo(cols, t as f32)).collect();
            let pairs = len.div_ceil(2);
            let mut panel = vec![0xFFFFu16; pairs * 2 * NR];
            for (u, dst) in panel.chunks_exact_mut(2 * NR).enumerate() {
                let second = values.get(2 * u + 1).map(Vec::as_slice);
                pack_pair(&values[2 * u], second, cols, dst);
            }
            let stride = 2 * pairs + 3;
            let probs_f: Vec<Vec<f32>> = (0..R)
                .map(|r| {
                    pseudo(len, 7.0 + r as f32)
                        .iter()
                        .map(|p| p + 0.5)
                        .collect()
                })
                .collect();
            let mut probs = vec![0xFFFFu16; (R - 1) * stride + 2 * pairs];
            for (r, p) in probs_f.iter().enumerate() {
                round_row(p, &mut probs[r * stride..][..2 * pairs]);
            }
            let got = products::<R>(&probs, stride, pairs, &panel);
            for r in 0..R {
                for c in 0..NR {
                    let want: f64 = (0..len)
                        .filter(|_| c < cols)
                        .map(|t| {
                            f64::from(widen(round(probs_f[r][t])))
                                * f64::from(widen(round(values[t][c])))
                        })
                        .sum();
                    let g = f64::from(got[r][c]);
                    assert!(
                        (g - want).abs() < 1e-5 * (1.0 + want.abs()) * len as f64,
                        "R {R} len {len} cols {cols} [{r}][{c}]: {g} vs {want}"
                    );
                }
            }
        }
        check::<1>(1, 32);
        check::<4>(7, 32);
        check::<3>(40, 20);
        check::<2>(255, 32);
        check::<4>(256, 9);
    }
}
