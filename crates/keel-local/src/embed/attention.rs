//! One attention head of one text on the f32 panel kernel of [`super::matmul`] (the scores
//! optionally on the int8 one of [`super::int8`]), with every operand laid out straight
//! from the `qkv` rows into per-thread scratch buffers.
//!
//! Why not two [`super::matmul::PackedLinear`] products: packing the keys and `Vᵀ` as layer
//! weights, interleaving whole `len × len` score matrices and allocating each buffer per
//! head cost more than the products themselves once the dense layers ran in int8 (a 1 KB
//! prompt spent a third of its pass in attention). Here the queries go four at a time: their
//! scores against every key panel, the softmax and the product with the values all stay in a
//! few KB of L1, and nothing is allocated but the head's output.
//!
//! Layouts (`NR` = panel width, `R` ≤ [`MAX_ROWS`] = rows of a tile):
//! - key panels: `ceil(len / NR)` panels of `d × NR`, `[c · NR + j]` = key `p · NR + j`,
//!   feature `c` (zero past `len`);
//! - value panels: `ceil(d / NR)` panels of `len × NR`, `[t · NR + c]` = value `t`, feature
//!   `p · NR + c` (for MiniLM's 32-wide heads one panel is the values themselves); with
//!   int8 scores on a CPU with AVX-512 BF16, bf16 panels of token pairs instead, and the
//!   probabilities rounded to bf16 rows beside the scores ([`super::bf16`]);
//! - a tile's queries (`d × R`) interleaved by row, as [`products`] reads them; its
//!   probabilities stay in the score rows (`R × width`, unnormalised, each row scaled by its
//!   1 / Σ on output), which [`products_rows`] reads in place.

use super::bf16;
use super::int8::QuantWeight;
use super::kernels::softmax_unscaled;
use super::matmul::{MR, NR, products, products_rows};
use std::cell::RefCell;

/// Most queries of a tile: the f32 panel kernel's `MR`, or the int8 kernel's 8 (its full
/// register block, and twice the rows per bf16 value load).
const MAX_ROWS: usize = super::int8::MR;
const _: () = assert!(MR <= MAX_ROWS);
const _: () = assert!(bf16::NR == NR, "bf16 value panels are as wide as f32 ones");

#[derive(Default)]
struct Scratch {
    keys: Vec<f32>,
    values: Vec<f32>,
    queries: Vec<f32>,
    scores: Vec<f32>,
    /// bf16 value panels and probability rows (the bf16 `P V`).
    values16: Vec<u16>,
    probs16: Vec<u16>,
    /// The int8 kernel's bias: none.
    zeros: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Where one head's operands sit in a text's `qkv` rows (each `3 · hidden` wide: queries,
/// keys, values).
#[derive(Clone, Copy)]
pub(crate) struct HeadView<'a> {
    pub qkv: &'a [f32],
    pub len: usize,
    pub hidden: usize,
    pub dim: usize,
    pub head: usize,
}

impl HeadView<'_> {
    /// Row `i` of part 0 (queries), 1 (keys) or 2 (values) of this head.
    fn row(&self, i: usize, part: usize) -> &[f32] {
        &self.qkv[i * 3 * self.hidden + part * self.hidden + self.head * self.dim..][..self.dim]
    }
}

/// `softmax(Q Kᵀ / √d) V` of one head: `len × d`, row-major. `int8_scores`: `Q Kᵀ` in int8
/// on AVX-512 VNNI ([`super::int8`]: keys quantized per key, queries per query; the caller
/// checked the CPU has it); `P V` then runs in bf16 where the CPU has AVX-512 BF16
/// ([`super::bf16`]), else in f32; never in int8, since 8 bits drop the small probabilities
/// a long text's attention is spread over.
pub(crate) fn head(v: HeadView<'_>, int8_scores: bool) -> Vec<f32> {
    let (len, d) = (v.len, v.dim);
    let mut out = vec![0.0f32; len * d];
    if len == 0 || d == 0 {
        return out;
    }
    SCRATCH.with(|cell| {
        let s = &mut *cell.borrow_mut();
        s.keys.clear();
        let quantized = if int8_scores {
            for j in 0..len {
                s.keys.extend_from_slice(v.row(j, 1));
            }
            Some(QuantWeight::pack(&s.keys, len, d))
        } else {
            let key_panels = len.div_ceil(NR);
            s.keys.resize(key_panels * d * NR, 0.0);
            for j in 0..len {
                let panel = &mut s.keys[(j / NR) * d * NR..][..d * NR];
                for (dst, &x) in panel[j % NR..].iter_mut().step_by(NR).zip(v.row(j, 1)) {
                    *dst = x;
                }
            }
            None
        };
        let value_panels = d.div_ceil(NR);
        let half = int8_scores && bf16::available();
        if half {
            let pairs = len.div_ceil(2);
            // Sized, not zeroed: `pack_pair` writes every value, padding included.
            s.values16.resize(value_panels * pairs * 2 * NR, 0);
            for (p, panel) in s.values16.chunks_exact_mut(pairs * 2 * NR).enumerate() {
                let cols = NR.min(d - p * NR);
                for (u, dst) in panel.chunks_exact_mut(2 * NR).enumerate() {
                    let second = (2 * u + 1 < len).then(|| &v.row(2 * u + 1, 2)[p * NR..]);
                    bf16::pack_pair(&v.row(2 * u, 2)[p * NR..], second, cols, dst);
                }
            }
            s.probs16.resize(MAX_ROWS * 2 * pairs, 0);
        } else {
            s.values.clear();
            s.values.resize(value_panels * len * NR, 0.0);
            for (p, panel) in s.values.chunks_exact_mut(len * NR).enumerate() {
                let cols = NR.min(d - p * NR);
                for (t, dst) in panel.chunks_exact_mut(NR).enumerate() {
                    dst[..cols].copy_from_slice(&v.row(t, 2)[p * NR..][..cols]);
                }
            }
        }
        // Score rows: `len` wide from the int8 kernel, whole key panels from the f32 one.
        let width = match quantized {
            Some(_) => len,
            None => len.div_ceil(NR) * NR,
        };
        let rows = if int8_scores { MAX_ROWS } else { MR };
        s.scores.resize(rows * width, 0.0);
        s.queries.resize(d * rows, 0.0);
        s.zeros.resize(len, 0.0);
        let keys = quantized.as_ref();
        for (t, dst) in out.chunks_mut(rows * d).enumerate() {
            let first = t * rows;
            match dst.len() / d {
                8 => tile::<8>(&v, s, keys, half, width, first, dst),
                7 => tile::<7>(&v, s, keys, half, width, first, dst),
                6 => tile::<6>(&v, s, keys, half, width, first, dst),
                5 => tile::<5>(&v, s, keys, half, width, first, dst),
                4 => tile::<4>(&v, s, keys, half, width, first, dst),
                3 => tile::<3>(&v, s, keys, half, width, first, dst),
                2 => tile::<2>(&v, s, keys, half, width, first, dst),
                _ => tile::<1>(&v, s, keys, half, width, first, dst),
            }
        }
    });
    out
}

/// Rows `first..first + R` of the head's output into `out` (`R × d`); `keys` quantized for
/// int8 scores, else the f32 key panels are in the scratch; `half`: the value panels in the
/// scratch are bf16.
fn tile<const R: usize>(
    v: &HeadView<'_>,
    s: &mut Scratch,
    keys: Option<&QuantWeight>,
    half: bool,
    width: usize,
    first: usize,
    out: &mut [f32],
) {
    const { assert!(R <= MAX_ROWS) };
    let (len, d) = (v.len, v.dim);
    let scale = 1.0 / (d as f32).sqrt();
    let queries = &mut s.queries[..d * R];
    let scores = &mut s.scores[..R * width];
    match keys {
        Some(keys) => {
            // Row-major queries, as the int8 kernel quantizes them.
            for (dst, i) in queries.chunks_exact_mut(d).zip(first..) {
                for (o, &x) in dst.iter_mut().zip(v.row(i, 0)) {
                    *o = x * scale;
                }
            }
            keys.forward(queries, scores, &s.zeros[..len]);
        }
        None => {
            for i in 0..R {
                for (dst, &x) in queries[i..].iter_mut().step_by(R).zip(v.row(first + i, 0)) {
                    *dst = x * scale;
                }
            }
            for (p, panel) in s.keys.chunks_exact(d * NR).enumerate() {
                let acc = products::<R>(queries, panel);
                for (row, a) in scores.chunks_exact_mut(width).zip(&acc) {
                    row[p * NR..][..NR].copy_from_slice(a);
                }
            }
        }
    }
    // Each row's softmax in place; its 1 / Σ scales the row's output.
    let mut inv = [0.0f32; R];
    for (i, row) in scores.chunks_exact_mut(width).enumerate() {
        inv[i] = softmax_unscaled(&mut row[..len]);
    }
    let pairs = len.div_ceil(2);
    if half {
        for (row, dst) in scores
            .chunks_exact(width)
            .zip(s.probs16.chunks_exact_mut(2 * pairs))
        {
            bf16::round_row(&row[..len], dst);
        }
    }
    let panels = d.div_ceil(NR);
    for p in 0..panels {
        let acc = if half {
            let panel = &s.values16[p * pairs * 2 * NR..][..pairs * 2 * NR];
            bf16::products::<R>(&s.probs16, 2 * pairs, pairs, panel)
        } else {
            products_rows::<R>(scores, width, len, &s.values[p * len * NR..][..len * NR])
        };
        let cols = NR.min(d - p * NR);
        for ((row, a), inv) in out.chunks_exact_mut(d).zip(&acc).zip(inv) {
            for (o, x) in row[p * NR..][..cols].iter_mut().zip(a) {
                *o = x * inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook computation in f64.
    fn naive(v: &HeadView<'_>) -> Vec<f64> {
        let (len, d) = (v.len, v.dim);
        let mut out = vec![0.0f64; len * d];
        for i in 0..len {
            let q = v.row(i, 0);
            let scores: Vec<f64> = (0..len)
                .map(|j| {
                    let k = v.row(j, 1);
                    q.iter()
                        .zip(k)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for (j, w) in e.iter().enumerate() {
                for (c, x) in v.row(j, 2).iter().enumerate() {
                    out[i * d + c] += w / total * f64::from(*x);
                }
            }
        }
        out
    }

    /// Checks both score kernels against [`naive`] on ragged shapes: lengths not multiples
    /// of MR or NR, heads narrower than, equal to and wider than a panel. f32 must agree to
    /// rounding; int8 scores to within `int8_tolerance` of the values' range (±`spread`).
    fn check(spread: f32, int8_tolerance: f64) {
        let shapes = [
            (1, 1, 4),
            (5, 2, 32),
            (33, 3, 32),
            (70, 2, 40),
            (130, 1, 64),
        ];
        for (len, heads, dim) in shapes {
            let hidden = heads * dim;
            let qkv: Vec<f32> = (0..len * 3 * hidden)
                .map(|i| ((i as f32 * 0.618).sin() * 43758.547).fract() * spread)
                .collect();
            for head in 0..heads {
                let v = HeadView {
                    qkv: &qkv,
                    len,
                    hidden,
                    dim,
                    head,
                };
                let want = naive(&v);
                let mut kernels = vec![(false, 1e-5)];
                if super::super::int8::available() {
                    kernels.push((true, int8_tolerance * f64::from(spread)));
                }
                for (int8, tolerance) in kernels {
                    let got = super::head(v, int8);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        let bound = if int8 {
                            tolerance
                        } else {
                            tolerance * (1.0 + w.abs())
                        };
                        assert!(
                            (f64::from(*g) - w).abs() < bound,
                            "int8 {int8}, len {len} dim {dim} head {head} [{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn matches_the_textbook_formula_on_ragged_shapes() {
        // Logits up to about ±9·√d: peaked attention, where score errors matter most.
        check(3.0, 0.05);
        // Logits of about ±1: attention spread over many keys.
        check(0.5, 0.01);
    }
}
