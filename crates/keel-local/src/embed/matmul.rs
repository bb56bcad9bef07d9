//! A dense layer `y = x Wᵀ + b` with its weight packed once, at load time, into column
//! panels laid out in the order the multiply reads them.
//!
//! Why not candle's matmul: it re-packs the (transposed) weight on every call and pays
//! thread-pool dispatch per op, which dominates for the few-token inputs of a query. Here
//! each panel holds `NR` output columns for every input feature (`k × NR`, contiguous), and
//! the kernel keeps an `MR × NR` block of outputs in registers while it streams a panel and
//! broadcasts the matching inputs: plain loops over fixed-size arrays, which the compiler
//! turns into FMA vector code. Rows are split between threads for large inputs.
//!
//! On CPUs with AMX tiles the weight is packed for [`super::amx`] instead, which is
//! several times faster per multiply at the same (f32-like) precision (about 1.4× for a
//! whole MiniLM pass, see docs/BENCHMARKS.md).

use super::amx::{Precision, Tiles};
use super::int8::QuantWeight;
use std::sync::OnceLock;

/// The tile precision of this process ([`Precision::from_env`], read once).
fn precision() -> Precision {
    static PRECISION: OnceLock<Precision> = OnceLock::new();
    *PRECISION.get_or_init(Precision::from_env)
}

/// Output columns per panel: two AVX-512 registers, four AVX2 ones.
pub(super) const NR: usize = 32;
/// Rows computed together by the kernel.
pub(super) const MR: usize = 4;
/// Rows per cache block: their packed inputs stay in L2 while every panel streams by.
const MB: usize = 64;
/// Rows of one AMX kernel block.
const AMX_ROWS: usize = 32;
/// Most rows for which tile multiplies split columns, not rows, between threads.
const AMX_COLUMN_SPLIT_ROWS: usize = 128;
/// Multiply-adds below which splitting rows between threads is not worth a thread spawn.
const PARALLEL_MIN_WORK: usize = 1 << 22;

/// Which kernel a layer's weight is packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// FMA vector code over f32 panels (any CPU).
    Panels,
    /// AMX tiles in split bf16 ([`super::amx`]).
    Amx,
    /// int8 weights and inputs on AVX-512 VNNI ([`super::int8`]): faster, less exact.
    Int8,
}

impl Backend {
    /// AMX where [`super::amx::available`], else panels.
    pub(crate) fn best() -> Self {
        if super::amx::available() {
            Backend::Amx
        } else {
            Backend::Panels
        }
    }
}

/// A linear layer with its weight pre-packed.
pub(crate) struct PackedLinear {
    /// Input features.
    k: usize,
    /// Output features.
    n: usize,
    packed: Packed,
    bias: Vec<f32>,
}

enum Packed {
    /// `ceil(n / NR)` panels of `k × NR` floats; columns past `n` are zero.
    Panels(Vec<f32>),
    Amx(Tiles),
    Int8(QuantWeight),
}

impl PackedLinear {
    /// Packs a PyTorch-layout weight (`n` rows of `k` inputs, row-major) and its bias for
    /// `backend` (`Amx` only where [`super::amx::available`], `Int8` only where
    /// [`super::int8::available`]).
    pub(crate) fn with_backend(
        weight: &[f32],
        bias: &[f32],
        n: usize,
        k: usize,
        backend: Backend,
    ) -> Option<Self> {
        if weight.len() != n * k || bias.len() != n || k == 0 {
            return None;
        }
        let packed = match backend {
            Backend::Amx => Some(Packed::Amx(Tiles::pack(weight, n, k, precision()))),
            Backend::Int8 => Some(Packed::Int8(QuantWeight::pack(weight, n, k))),
            Backend::Panels => None,
        };
        if let Some(packed) = packed {
            return Some(Self {
                k,
                n,
                packed,
                bias: bias.to_vec(),
            });
        }
        let count = n.div_ceil(NR);
        let mut panels = vec![0.0f32; count * k * NR];
        for (p, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
            for c in 0..NR.min(n - p * NR) {
                let w = &weight[(p * NR + c) * k..][..k];
                for (kk, &v) in w.iter().enumerate() {
                    panel[kk * NR + c] = v;
                }
            }
        }
        Some(Self {
            k,
            n,
            packed: Packed::Panels(panels),
            bias: bias.to_vec(),
        })
    }

    /// Stacks layers that read the same input into one (their outputs side by side), e.g.
    /// a self-attention's query, key and value projections.
    pub(crate) fn concat(
        parts: &[(&[f32], &[f32], usize)],
        k: usize,
        backend: Backend,
    ) -> Option<Self> {
        let n: usize = parts.iter().map(|p| p.2).sum();
        let mut weight = Vec::with_capacity(n * k);
        let mut bias = Vec::with_capacity(n);
        for (w, b, _) in parts {
            weight.extend_from_slice(w);
            bias.extend_from_slice(b);
        }
        Self::with_backend(&weight, &bias, n, k, backend)
    }

    pub(crate) fn out_features(&self) -> usize {
        self.n
    }

    /// `out = x Wᵀ + b` for `x` of `rows × k` and `out` of `rows × n` (row-major), using up
    /// to `threads` threads.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32], threads: usize) {
        self.forward_then(x, out, threads, &|_| {});
    }

    /// [`PackedLinear::forward`], then `then` on whole output rows (each thread on the rows
    /// it computed, while they are in its cache), e.g. the activation after a layer.
    pub(crate) fn forward_then(
        &self,
        x: &[f32],
        out: &mut [f32],
        threads: usize,
        then: &(dyn Fn(&mut [f32]) + Sync),
    ) {
        let (k, n) = (self.k, self.n);
        let rows = (x.len() / k).min(out.len() / n);
        let (x, out) = (&x[..rows * k], &mut out[..rows * n]);
        let threads = if rows * k * n < PARALLEL_MIN_WORK {
            1
        } else {
            threads.min(rows.div_ceil(MR)).max(1)
        };
        if threads == 1 {
            self.forward_rows(x, out);
            return then(out);
        }
        if let Packed::Amx(tiles) = &self.packed
            && rows <= AMX_COLUMN_SPLIT_ROWS
        {
            self.forward_columns(tiles, x, out, threads);
            return then(out);
        }
        // Whole kernel tiles per thread.
        let grain = match self.packed {
            Packed::Panels(_) => MR,
            Packed::Amx(_) => AMX_ROWS,
            Packed::Int8(_) => super::int8::MR,
        };
        let per = rows.div_ceil(threads).div_ceil(grain) * grain;
        let jobs: Vec<super::pool::Job<'_, ()>> = x
            .chunks(per * k)
            .zip(out.chunks_mut(per * n))
            .map(|(xc, oc)| {
                Box::new(move || {
                    self.forward_rows(xc, oc);
                    then(oc);
                }) as Box<_>
            })
            .collect();
        super::pool::run_all(jobs);
    }

    /// Few rows on tiles: the time goes into streaming the weight from memory, so the
    /// threads take disjoint column pairs (each streams its share of the weight) and write
    /// their columns into `out` afterwards.
    fn forward_columns(&self, tiles: &Tiles, x: &[f32], out: &mut [f32], threads: usize) {
        let (k, n) = (self.k, self.n);
        let rows = x.len() / k;
        let pairs = tiles.column_pairs();
        let per = pairs.div_ceil(threads.min(pairs).max(1));
        let ranges: Vec<std::ops::Range<usize>> = (0..pairs)
            .step_by(per)
            .map(|first| first..(first + per).min(pairs))
            .collect();
        let jobs: Vec<super::pool::Job<'_, Vec<f32>>> = ranges
            .iter()
            .map(|range| {
                let range = range.clone();
                Box::new(move || {
                    let mut part = vec![0.0f32; rows * tiles.columns_in(&range).len()];
                    tiles.forward_columns(x, &mut part, &self.bias, range);
                    part
                }) as Box<_>
            })
            .collect();
        let parts = super::pool::run_all(jobs);
        for (range, part) in ranges.iter().zip(&parts) {
            let columns = tiles.columns_in(range);
            let width = columns.len();
            if width == 0 {
                continue;
            }
            for (dst, src) in out.chunks_exact_mut(n).zip(part.chunks_exact(width)) {
                dst[columns.clone()].copy_from_slice(src);
            }
        }
    }

    /// Single-threaded multiply of whole rows.
    fn forward_rows(&self, x: &[f32], out: &mut [f32]) {
        match &self.packed {
            Packed::Panels(panels) => self.forward_panels(panels, x, out),
            Packed::Amx(tiles) => tiles.forward(x, out, &self.bias),
            Packed::Int8(q) => q.forward(x, out, &self.bias),
        }
    }

    fn forward_panels(&self, panels: &[f32], x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        let mut packed = vec![0.0f32; MB * k];
        for (xb, ob) in x.chunks(MB * k).zip(out.chunks_mut(MB * n)) {
            let rows = xb.len() / k;
            // Pack the block's rows tile by tile: for each tile, k groups of its rows'
            // values at that input feature.
            for (t, xt) in xb.chunks(MR * k).enumerate() {
                let r = xt.len() / k;
                let dst = &mut packed[t * MR * k..][..r * k];
                if r == MR {
                    // Written in order, read from four sequential streams: a scatter with
                    // stride `r` here cost as much as attention's products.
                    let (r0, rest) = xt.split_at(k);
                    let (r1, rest) = rest.split_at(k);
                    let (r2, r3) = rest.split_at(k);
                    for ((((d, a), b), c), e) in dst
                        .as_chunks_mut::<MR>()
                        .0
                        .iter_mut()
                        .zip(r0)
                        .zip(r1)
                        .zip(r2)
                        .zip(r3)
                    {
                        *d = [*a, *b, *c, *e];
                    }
                } else {
                    for (i, row) in xt.chunks_exact(k).enumerate() {
                        for (kk, &v) in row.iter().enumerate() {
                            dst[kk * r + i] = v;
                        }
                    }
                }
            }
            for (p, panel) in panels.chunks_exact(k * NR).enumerate() {
                let col = p * NR;
                let width = NR.min(n - col);
                let bias = &self.bias[col..col + width];
                for t in 0..rows.div_ceil(MR) {
                    let r = MR.min(rows - t * MR);
                    let xt = &packed[t * MR * k..][..r * k];
                    let ot = &mut ob[t * MR * n..];
                    match r {
                        4 => tile::<4>(xt, panel, ot, n, col, bias),
                        3 => tile::<3>(xt, panel, ot, n, col, bias),
                        2 => tile::<2>(xt, panel, ot, n, col, bias),
                        _ => tile::<1>(xt, panel, ot, n, col, bias),
                    }
                }
            }
        }
    }
}

/// `R` rows × one panel: `xt` holds the rows' inputs interleaved (`k × R`), `panel` the
/// weights (`k × NR`); writes `bias.len()` columns starting at `col` of rows `0..R` of
/// `out` (row stride `n`).
#[inline(always)]
fn tile<const R: usize>(
    xt: &[f32],
    panel: &[f32],
    out: &mut [f32],
    n: usize,
    col: usize,
    bias: &[f32],
) {
    let acc = products::<R>(xt, panel);
    for (r, a) in acc.iter().enumerate() {
        let dst = &mut out[r * n + col..][..bias.len()];
        for ((d, a), b) in dst.iter_mut().zip(a).zip(bias) {
            *d = a + b;
        }
    }
}

/// `R` rows (interleaved, `k × R`) times one panel (`k × NR`): on 512-bit registers where
/// the CPU has them ([`super::simd`], bitwise the same sums), else the portable loop.
#[inline]
pub(super) fn products<const R: usize>(xt: &[f32], panel: &[f32]) -> [[f32; NR]; R] {
    if super::simd::available() {
        super::simd::products::<R>(xt, panel)
    } else {
        products_portable::<R>(xt, panel)
    }
}

/// The register-blocked inner product of [`tile`]. Kept out of line with index loops over
/// fixed-size chunks: inlined into the caller, or written with iterator zips, the compiler
/// kept `acc` in memory and emitted scalar code (10x slower).
///
/// Two rows at a time: AVX2 has 16 vector registers, and four rows' sums (16 registers of
/// 8) plus the panel row do not fit, so the compiler kept them in memory. Each sum still
/// adds its terms in `t` order, so the results are the same.
#[inline(never)]
pub(super) fn products_portable<const R: usize>(xt: &[f32], panel: &[f32]) -> [[f32; NR]; R] {
    let (xs, _) = xt.as_chunks::<R>();
    let (ws, _) = panel.as_chunks::<NR>();
    let steps = xs.len().min(ws.len());
    by_pairs::<R>(|r, t| xs[t][r], &ws[..steps])
}

/// `Σ_t x(r, t) · ws[t][c]` for rows `r < R`, computed two rows at a time (see
/// [`products_portable`]); an odd last row is paired with itself.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn by_pairs<const R: usize>(x: impl Fn(usize, usize) -> f32, ws: &[[f32; NR]]) -> [[f32; NR]; R] {
    let mut out = [[0.0f32; NR]; R];
    for first in (0..R).step_by(2) {
        let second = (first + 1).min(R - 1);
        let mut acc = [[0.0f32; NR]; 2];
        for (t, w) in ws.iter().enumerate() {
            let (a, b) = (x(first, t), x(second, t));
            for c in 0..NR {
                acc[0][c] = a.mul_add(w[c], acc[0][c]);
                acc[1][c] = b.mul_add(w[c], acc[1][c]);
            }
        }
        out[first] = acc[0];
        out[second] = acc[1];
    }
    out
}

/// `Σ_t rows[r · width + t] · panel[t · NR + c]` for `t < len`: like [`products`], but the
/// `R` rows are read where they lie (row-major, `width` apart) instead of interleaved. On
/// 512-bit registers where the CPU has them ([`super::simd`], bitwise the same sums).
#[inline]
pub(super) fn products_rows<const R: usize>(
    rows: &[f32],
    width: usize,
    len: usize,
    panel: &[f32],
) -> [[f32; NR]; R] {
    if super::simd::available() {
        super::simd::products_rows::<R>(rows, width, len, panel)
    } else {
        products_rows_portable::<R>(rows, width, len, panel)
    }
}

/// [`products_rows`] in portable code; out of line and two rows at a time for the reasons
/// given at [`products_portable`].
#[inline(never)]
pub(super) fn products_rows_portable<const R: usize>(
    rows: &[f32],
    width: usize,
    len: usize,
    panel: &[f32],
) -> [[f32; NR]; R] {
    assert!(len <= width && rows.len() >= (R - 1) * width + len && panel.len() >= len * NR);
    let (ws, _) = panel.as_chunks::<NR>();
    by_pairs::<R>(|r, t| rows[r * width + t], &ws[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact product (f64) and, per output, the sum of the terms' magnitudes.
    fn naive(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        rows: usize,
        n: usize,
        k: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut out = vec![0.0f32; rows * n];
        let mut mag = vec![0.0f32; rows * n];
        for i in 0..rows {
            for j in 0..n {
                let terms = (0..k).map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]));
                out[i * n + j] = terms.clone().sum::<f64>() as f32 + b[j];
                mag[i * n + j] = terms.map(f64::abs).sum::<f64>() as f32 + b[j].abs();
            }
        }
        (out, mag)
    }

    fn pseudo(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5)
            .collect()
    }

    /// Every kernel this machine can run.
    fn backends() -> Vec<Backend> {
        let mut all = vec![Backend::Panels];
        if super::super::amx::available() {
            all.push(Backend::Amx);
        }
        if super::super::int8::available() {
            all.push(Backend::Int8);
        }
        all
    }

    /// f32 panels differ from the exact sum only in rounding; split-bf16 tiles carry ~2⁻¹⁶
    /// relative error per product; int8 rounds each operand to half a step of its row's or
    /// column's maximum (`pseudo` values lie in [-1.5, 0.5]: a step is at most 1.5 / 127),
    /// so each of the `k` products is off by at most 2 · 1.5 · 0.5 · 1.5 / 127.
    fn close(backend: Backend, got: f32, want: f32, magnitude: f32, k: usize) -> bool {
        let tolerance = match backend {
            Backend::Panels => 1e-5 * (1.0 + want.abs()),
            Backend::Amx => 5e-5 * magnitude + 1e-6,
            Backend::Int8 => k as f32 * 2.25 / 127.0 + 1e-5,
        };
        (got - want).abs() <= tolerance
    }

    #[test]
    fn matches_a_naive_multiply_on_ragged_shapes() {
        // Rows not a multiple of MR, MB or 32, columns not a multiple of NR or 16.
        for backend in backends() {
            for (rows, n, k) in [
                (1, 1, 1),
                (3, 33, 7),
                (15, 384, 384),
                (67, 70, 129),
                (130, 40, 5),
            ] {
                let x = pseudo(rows * k, 1.0);
                let w = pseudo(n * k, 2.0);
                let b = pseudo(n, 3.0);
                let layer = PackedLinear::with_backend(&w, &b, n, k, backend).unwrap();
                let (want, mag) = naive(&x, &w, &b, rows, n, k);
                for threads in [1, 2, 3] {
                    let mut out = vec![f32::NAN; rows * n];
                    layer.forward(&x, &mut out, threads);
                    for (i, g) in out.iter().enumerate() {
                        assert!(
                            close(backend, *g, want[i], mag[i], k),
                            "{backend:?} {rows}x{n}x{k}, {threads} threads, [{i}]: {g} vs {}",
                            want[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_keep_more_precision_than_one_bf16_rounding() {
        // One bf16 rounding of the inputs alone would be off by ~2⁻⁹ relative; the split
        // product must be far closer on a layer of the real size.
        if !super::super::amx::available() {
            return;
        }
        let (rows, n, k) = (40, 384, 384);
        let x = pseudo(rows * k, 8.0);
        let w = pseudo(n * k, 9.0);
        let b = vec![0.0; n];
        let layer = PackedLinear::with_backend(&w, &b, n, k, Backend::Amx).unwrap();
        let (want, mag) = naive(&x, &w, &b, rows, n, k);
        let mut out = vec![0.0; rows * n];
        layer.forward(&x, &mut out, 1);
        let worst = out
            .iter()
            .zip(&want)
            .zip(&mag)
            .map(|((g, w), m)| (g - w).abs() / m)
            .fold(0.0f32, f32::max);
        assert!(worst < 2e-5, "worst relative error {worst}");
    }

    #[test]
    fn splits_large_inputs_between_threads_with_the_same_result() {
        // Many rows (split by rows), and few rows with many outputs (on tiles: split by
        // columns, including a last pair that is cut short).
        for (rows, n, k) in [(200, 96, 384), (20, 1000, 384)] {
            assert!(rows * n * k >= PARALLEL_MIN_WORK);
            split_case(rows, n, k);
        }
    }

    fn split_case(rows: usize, n: usize, k: usize) {
        let x = pseudo(rows * k, 4.0);
        let w = pseudo(n * k, 5.0);
        for backend in backends() {
            let layer = PackedLinear::with_backend(&w, &vec![0.5; n], n, k, backend).unwrap();
            let mut one = vec![0.0f32; rows * n];
            let mut three = vec![1.0f32; rows * n];
            layer.forward(&x, &mut one, 1);
            layer.forward(&x, &mut three, 3);
            assert_eq!(
                one, three,
                "{backend:?}: thread splits must not change any value"
            );
            let (want, mag) = naive(&x, &w, &vec![0.5; n], rows, n, k);
            assert!((0..want.len()).all(|i| close(backend, one[i], want[i], mag[i], k)));
        }
    }

    #[test]
    fn forward_then_applies_to_every_row_once() {
        // Large enough to be split between threads, rows not a multiple of any grain.
        let (rows, n, k) = (203, 96, 384);
        let x = pseudo(rows * k, 6.0);
        let w = pseudo(n * k, 7.0);
        for backend in backends() {
            let layer = PackedLinear::with_backend(&w, &vec![0.25; n], n, k, backend).unwrap();
            let mut plain = vec![0.0f32; rows * n];
            layer.forward(&x, &mut plain, 1);
            for threads in [1, 2, 3] {
                let mut out = vec![f32::NAN; rows * n];
                layer.forward_then(&x, &mut out, threads, &|o| {
                    o.iter_mut().for_each(|v| *v = 2.0 * *v + 1.0)
                });
                for (i, (o, p)) in out.iter().zip(&plain).enumerate() {
                    assert_eq!(*o, 2.0 * p + 1.0, "{backend:?}, {threads} threads, [{i}]");
                }
            }
        }
    }

    #[test]
    fn concat_puts_outputs_side_by_side() {
        let k = 9;
        let (w1, b1) = (pseudo(5 * k, 1.0), pseudo(5, 2.0));
        let (w2, b2) = (pseudo(40 * k, 3.0), pseudo(40, 4.0));
        for backend in backends() {
            let both = PackedLinear::concat(&[(&w1, &b1, 5), (&w2, &b2, 40)], k, backend).unwrap();
            assert_eq!(both.out_features(), 45);
            let x = pseudo(6 * k, 7.0);
            let mut out = vec![0.0; 6 * 45];
            both.forward(&x, &mut out, 1);
            let (a, am) = naive(&x, &w1, &b1, 6, 5, k);
            let (b, bm) = naive(&x, &w2, &b2, 6, 40, k);
            for i in 0..6 {
                for j in 0..45 {
                    let (want, mag) = if j < 5 {
                        (a[i * 5 + j], am[i * 5 + j])
                    } else {
                        (b[i * 40 + j - 5], bm[i * 40 + j - 5])
                    };
                    assert!(
                        close(backend, out[i * 45 + j], want, mag, k),
                        "{backend:?} [{i},{j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_mismatched_shapes() {
        assert!(PackedLinear::with_backend(&[0.0; 6], &[0.0; 2], 2, 4, Backend::Panels).is_none());
        assert!(PackedLinear::with_backend(&[0.0; 8], &[0.0; 3], 2, 4, Backend::Panels).is_none());
    }
}
