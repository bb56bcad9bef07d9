//! A dense layer `y = x Wᵀ + b` with its weight packed once, at load time, into column
//! panels laid out in the order the multiply reads them.
//!
//! Why not candle's matmul: it re-packs the (transposed) weight on every call and pays
//! thread-pool dispatch per op, which dominates for the few-token inputs of a query. Here
//! each panel holds `NR` output columns for every input feature (`k × NR`, contiguous), and
//! the kernel keeps an `MR × NR` block of outputs in registers while it streams a panel and
//! broadcasts the matching inputs: plain loops over fixed-size arrays, which the compiler
//! turns into FMA vector code. Rows are split between threads for large inputs.

/// Output columns per panel: two AVX-512 registers, four AVX2 ones.
const NR: usize = 32;
/// Rows computed together by the kernel.
const MR: usize = 4;
/// Rows per cache block: their packed inputs stay in L2 while every panel streams by.
const MB: usize = 64;
/// Multiply-adds below which splitting rows between threads is not worth a thread spawn.
const PARALLEL_MIN_WORK: usize = 1 << 22;

/// A linear layer with its weight pre-packed.
pub(crate) struct PackedLinear {
    /// Input features.
    k: usize,
    /// Output features.
    n: usize,
    /// `ceil(n / NR)` panels of `k × NR` floats; columns past `n` are zero.
    panels: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Packs a PyTorch-layout weight (`n` rows of `k` inputs, row-major) and its bias.
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize) -> Option<Self> {
        if weight.len() != n * k || bias.len() != n || k == 0 {
            return None;
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
            panels,
            bias: bias.to_vec(),
        })
    }

    /// Stacks layers that read the same input into one (their outputs side by side), e.g.
    /// a self-attention's query, key and value projections.
    pub(crate) fn concat(parts: &[(&[f32], &[f32], usize)], k: usize) -> Option<Self> {
        let n: usize = parts.iter().map(|p| p.2).sum();
        let mut weight = Vec::with_capacity(n * k);
        let mut bias = Vec::with_capacity(n);
        for (w, b, _) in parts {
            weight.extend_from_slice(w);
            bias.extend_from_slice(b);
        }
        Self::new(&weight, &bias, n, k)
    }

    pub(crate) fn out_features(&self) -> usize {
        self.n
    }

    /// `out = x Wᵀ + b` for `x` of `rows × k` and `out` of `rows × n` (row-major), using up
    /// to `threads` threads.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32], threads: usize) {
        let (k, n) = (self.k, self.n);
        let rows = (x.len() / k).min(out.len() / n);
        let (x, out) = (&x[..rows * k], &mut out[..rows * n]);
        let threads = if rows * k * n < PARALLEL_MIN_WORK {
            1
        } else {
            threads.min(rows.div_ceil(MR)).max(1)
        };
        if threads == 1 {
            return self.forward_rows(x, out);
        }
        // Whole kernel tiles per thread; the calling thread takes the first share.
        let per = rows.div_ceil(threads).div_ceil(MR) * MR;
        std::thread::scope(|s| {
            let mut xs = x.chunks(per * k);
            let mut outs = out.chunks_mut(per * n);
            let first = (xs.next(), outs.next());
            for (xc, oc) in xs.zip(outs) {
                s.spawn(move || self.forward_rows(xc, oc));
            }
            if let (Some(xc), Some(oc)) = first {
                self.forward_rows(xc, oc);
            }
        });
    }

    /// Single-threaded multiply of whole rows.
    fn forward_rows(&self, x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        let mut packed = vec![0.0f32; MB * k];
        for (xb, ob) in x.chunks(MB * k).zip(out.chunks_mut(MB * n)) {
            let rows = xb.len() / k;
            // Pack the block's rows tile by tile: for each tile, k groups of its rows'
            // values at that input feature.
            for (t, xt) in xb.chunks(MR * k).enumerate() {
                let r = xt.len() / k;
                let dst = &mut packed[t * MR * k..][..r * k];
                for (i, row) in xt.chunks_exact(k).enumerate() {
                    for (kk, &v) in row.iter().enumerate() {
                        dst[kk * r + i] = v;
                    }
                }
            }
            for (p, panel) in self.panels.chunks_exact(k * NR).enumerate() {
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

/// The register-blocked inner product of [`tile`]. Kept out of line with index loops over
/// fixed-size chunks: inlined into the caller, or written with iterator zips, the compiler
/// kept `acc` in memory and emitted scalar code (10x slower).
#[inline(never)]
#[allow(clippy::needless_range_loop)]
fn products<const R: usize>(xt: &[f32], panel: &[f32]) -> [[f32; NR]; R] {
    let mut acc = [[0.0f32; NR]; R];
    let (xs, _) = xt.as_chunks::<R>();
    let (ws, _) = panel.as_chunks::<NR>();
    for (x, w) in xs.iter().zip(ws) {
        for r in 0..R {
            for c in 0..NR {
                acc[r][c] = x[r].mul_add(w[c], acc[r][c]);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], b: &[f32], rows: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * n];
        for i in 0..rows {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]))
                    .sum();
                out[i * n + j] = s as f32 + b[j];
            }
        }
        out
    }

    fn pseudo(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5)
            .collect()
    }

    #[test]
    fn matches_a_naive_multiply_on_ragged_shapes() {
        // Rows not a multiple of MR or MB, columns not a multiple of NR.
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
            let layer = PackedLinear::new(&w, &b, n, k).unwrap();
            let want = naive(&x, &w, &b, rows, n, k);
            for threads in [1, 2, 3] {
                let mut out = vec![f32::NAN; rows * n];
                layer.forward(&x, &mut out, threads);
                for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                        "{rows}x{n}x{k}, {threads} threads, [{i}]: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn splits_large_inputs_between_threads_with_the_same_result() {
        let (rows, n, k) = (200, 96, 384); // above PARALLEL_MIN_WORK
        assert!(rows * n * k >= PARALLEL_MIN_WORK);
        let x = pseudo(rows * k, 4.0);
        let w = pseudo(n * k, 5.0);
        let layer = PackedLinear::new(&w, &vec![0.5; n], n, k).unwrap();
        let mut one = vec![0.0f32; rows * n];
        let mut three = vec![1.0f32; rows * n];
        layer.forward(&x, &mut one, 1);
        layer.forward(&x, &mut three, 3);
        assert_eq!(one, three, "row splits must not change any value");
        let want = naive(&x, &w, &vec![0.5; n], rows, n, k);
        assert!(
            one.iter()
                .zip(&want)
                .all(|(g, w)| (g - w).abs() < 1e-5 * (1.0 + w.abs()))
        );
    }

    #[test]
    fn concat_puts_outputs_side_by_side() {
        let k = 9;
        let (w1, b1) = (pseudo(5 * k, 1.0), pseudo(5, 2.0));
        let (w2, b2) = (pseudo(40 * k, 3.0), pseudo(40, 4.0));
        let both = PackedLinear::concat(&[(&w1, &b1, 5), (&w2, &b2, 40)], k).unwrap();
        assert_eq!(both.out_features(), 45);
        let x = pseudo(6 * k, 7.0);
        let mut out = vec![0.0; 6 * 45];
        both.forward(&x, &mut out, 1);
        let (a, b) = (naive(&x, &w1, &b1, 6, 5, k), naive(&x, &w2, &b2, 6, 40, k));
        for i in 0..6 {
            for j in 0..45 {
                let want = if j < 5 {
                    a[i * 5 + j]
                } else {
                    b[i * 40 + j - 5]
                };
                assert!((out[i * 45 + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn rejects_mismatched_shapes() {
        assert!(PackedLinear::new(&[0.0; 6], &[0.0; 2], 2, 4).is_none());
        assert!(PackedLinear::new(&[0.0; 8], &[0.0; 3], 2, 4).is_none());
    }
}
