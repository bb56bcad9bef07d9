//! One attention head of one text on the f32 panel kernel of [`super::matmul`], with every
//! operand laid out straight from the `qkv` rows into per-thread scratch buffers.
//!
//! Why not two [`super::matmul::PackedLinear`] products: packing the keys and `Vᵀ` as layer
//! weights, interleaving whole `len × len` score matrices and allocating each buffer per
//! head cost more than the products themselves once the dense layers ran in int8 (a 1 KB
//! prompt spent a third of its pass in attention). Here the queries go four at a time: their
//! scores against every key panel, the softmax and the product with the values all stay in a
//! few KB of L1, and nothing is allocated but the head's output.
//!
//! Layouts (`NR` = panel width, `R` ≤ `MR` = rows of a tile):
//! - key panels: `ceil(len / NR)` panels of `d × NR`, `[c · NR + j]` = key `p · NR + j`,
//!   feature `c` (zero past `len`);
//! - value panels: `ceil(d / NR)` panels of `len × NR`, `[t · NR + c]` = value `t`, feature
//!   `p · NR + c` (for MiniLM's 32-wide heads one panel is the values themselves);
//! - a tile's queries (`d × R`) and probabilities (`len × R`) interleaved by row, as
//!   [`products`] reads them.

use super::kernels::softmax_unscaled;
use super::matmul::{MR, NR, products};
use std::cell::RefCell;

#[derive(Default)]
struct Scratch {
    keys: Vec<f32>,
    values: Vec<f32>,
    queries: Vec<f32>,
    scores: Vec<f32>,
    probs: Vec<f32>,
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

/// `softmax(Q Kᵀ / √d) V` of one head: `len × d`, row-major.
pub(crate) fn head(v: HeadView<'_>) -> Vec<f32> {
    let (len, d) = (v.len, v.dim);
    let mut out = vec![0.0f32; len * d];
    if len == 0 || d == 0 {
        return out;
    }
    SCRATCH.with(|cell| {
        let s = &mut *cell.borrow_mut();
        let key_panels = len.div_ceil(NR);
        s.keys.clear();
        s.keys.resize(key_panels * d * NR, 0.0);
        for j in 0..len {
            let panel = &mut s.keys[(j / NR) * d * NR..][..d * NR];
            for (dst, &x) in panel[j % NR..].iter_mut().step_by(NR).zip(v.row(j, 1)) {
                *dst = x;
            }
        }
        let value_panels = d.div_ceil(NR);
        s.values.clear();
        s.values.resize(value_panels * len * NR, 0.0);
        for (p, panel) in s.values.chunks_exact_mut(len * NR).enumerate() {
            let cols = NR.min(d - p * NR);
            for (t, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst[..cols].copy_from_slice(&v.row(t, 2)[p * NR..][..cols]);
            }
        }
        s.scores.resize(MR * key_panels * NR, 0.0);
        s.probs.resize(len * MR, 0.0);
        s.queries.resize(d * MR, 0.0);
        for (t, dst) in out.chunks_mut(MR * d).enumerate() {
            match dst.len() / d {
                4 => tile::<4>(&v, s, t * MR, dst),
                3 => tile::<3>(&v, s, t * MR, dst),
                2 => tile::<2>(&v, s, t * MR, dst),
                _ => tile::<1>(&v, s, t * MR, dst),
            }
        }
    });
    out
}

/// Rows `first..first + R` of the head's output into `out` (`R × d`).
fn tile<const R: usize>(v: &HeadView<'_>, s: &mut Scratch, first: usize, out: &mut [f32]) {
    const { assert!(R <= MR) };
    let (len, d) = (v.len, v.dim);
    let scale = 1.0 / (d as f32).sqrt();
    let queries = &mut s.queries[..d * R];
    for i in 0..R {
        for (dst, &x) in queries[i..].iter_mut().step_by(R).zip(v.row(first + i, 0)) {
            *dst = x * scale;
        }
    }
    let width = s.keys.len() / d;
    let scores = &mut s.scores[..R * width];
    for (p, panel) in s.keys.chunks_exact(d * NR).enumerate() {
        let acc = products::<R>(queries, panel);
        for (row, a) in scores.chunks_exact_mut(width).zip(&acc) {
            row[p * NR..][..NR].copy_from_slice(a);
        }
    }
    let probs = &mut s.probs[..len * R];
    for (i, row) in scores.chunks_exact_mut(width).enumerate() {
        let row = &mut row[..len];
        let inv = softmax_unscaled(row);
        for (dst, &x) in probs[i..].iter_mut().step_by(R).zip(row.iter()) {
            *dst = x * inv;
        }
    }
    for (p, panel) in s.values.chunks_exact(len * NR).enumerate() {
        let acc = products::<R>(probs, panel);
        let cols = NR.min(d - p * NR);
        for (row, a) in out.chunks_exact_mut(d).zip(&acc) {
            row[p * NR..][..cols].copy_from_slice(&a[..cols]);
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

    #[test]
    fn matches_the_textbook_formula_on_ragged_shapes() {
        // Lengths not multiples of MR or NR; heads narrower, equal to and wider than a panel.
        for (len, heads, dim) in [
            (1, 1, 4),
            (5, 2, 32),
            (33, 3, 32),
            (70, 2, 40),
            (130, 1, 64),
        ] {
            let hidden = heads * dim;
            let qkv: Vec<f32> = (0..len * 3 * hidden)
                .map(|i| ((i as f32 * 0.618).sin() * 43758.547).fract() * 3.0)
                .collect();
            for head in 0..heads {
                let v = HeadView {
                    qkv: &qkv,
                    len,
                    hidden,
                    dim,
                    head,
                };
                let got = super::head(v);
                let want = naive(&v);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-5 * (1.0 + w.abs()),
                        "len {len} dim {dim} head {head} [{i}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}
