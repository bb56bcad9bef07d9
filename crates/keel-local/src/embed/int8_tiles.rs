//! The int8 dense layers of [`super::int8`] on Intel AMX tiles: the same quantized integers
//! (weights per output column, inputs per row, the `+ 128` offset taken back out per
//! column) and the same dequantization, so the outputs are bitwise those of the AVX-512
//! VNNI kernel; only the multiply differs. One `tdpbusd` multiplies a 16 × 64 tile of
//! unsigned input bytes by a 64 × 16 tile of signed weight bytes into 16 × 16 i32 sums:
//! 16,384 multiply-adds per instruction against 64 for `vpdpbusd`.
//!
//! Layout: a weight of `n` outputs × `k` inputs becomes `ceil(n / 32) · 2` column blocks of
//! 16 outputs, each of `ceil(k / 64)` tiles of 1 KB; tile `t`, row `r` holds for each
//! output `c` its bytes for inputs `64t + 4r .. 64t + 4r + 4` (the order `tdpbusd` reads).
//! Inputs are quantized per call into rows of `ceil(k / 64) · 64` bytes, padded with the
//! byte for zero (128) and with zero rows up to a multiple of 32. The kernel
//! ([`super::amx::int8_block`], inline assembly) computes 32 × 32 outputs at a time.

use super::amx::{TileSession, int8_block};
use super::int8::{quantize_column, quantize_row};
use std::cell::RefCell;

/// Rows (and outputs) of one column block, and of a tile.
const TILE_ROWS: usize = 16;
/// Inputs per tile row group: one tile covers 64 inputs.
const TILE_K: usize = 64;
/// Bytes of one tile.
const TILE_BYTES: usize = TILE_ROWS * TILE_K;
/// Rows and outputs per kernel block.
const BLOCK: usize = 2 * TILE_ROWS;
/// Quantized inputs kept hot while the weights stream by: well inside a 2 MB L2.
const L2_INPUT_BYTES: usize = 768 * 1024;

/// A weight quantized to int8 and packed into AMX tiles (see the module docs).
pub(crate) struct QuantTiles {
    k: usize,
    n: usize,
    /// Tiles along K: `ceil(k / 64)`.
    steps: usize,
    /// Column blocks of 16 outputs (even).
    col_blocks: usize,
    data: Vec<i8>,
    /// Per output (padded to whole blocks): the dequantization scale.
    scale: Vec<f32>,
    /// Per output (padded): `128 · Σ_k q`.
    offset: Vec<i32>,
}

thread_local! {
    /// Per-thread quantized inputs and row scales, reused across calls.
    static INPUT: RefCell<(Vec<u8>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl QuantTiles {
    /// Quantizes and packs a PyTorch-layout weight (`n` rows of `k` inputs, row-major).
    pub(crate) fn pack(weight: &[f32], n: usize, k: usize) -> Self {
        let steps = k.div_ceil(TILE_K);
        let col_blocks = n.div_ceil(BLOCK) * 2;
        let block_len = steps * TILE_BYTES;
        let mut data = vec![0i8; col_blocks * block_len];
        let mut scale = vec![1.0f32; col_blocks * TILE_ROWS];
        let mut offset = vec![0i32; col_blocks * TILE_ROWS];
        for (col, w) in weight.chunks_exact(k).take(n).enumerate() {
            let block = &mut data[(col / TILE_ROWS) * block_len..][..block_len];
            let c = col % TILE_ROWS;
            (scale[col], offset[col]) = quantize_column(w, |kk, q| {
                let (t, r, e) = (kk / TILE_K, (kk % TILE_K) / 4, kk % 4);
                block[t * TILE_BYTES + r * TILE_K + c * 4 + e] = q;
            });
        }
        Self {
            k,
            n,
            steps,
            col_blocks,
            data,
            scale,
            offset,
        }
    }

    /// `out = x Wᵀ + bias` for `x` of `rows × k` and `out` of `rows × n`, on this thread.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32], bias: &[f32]) {
        assert!(
            super::amx::int8_available(),
            "int8 tiles need AMX-INT8 and the kernel's permission"
        );
        let (k, n) = (self.k, self.n);
        let rows = (x.len() / k).min(out.len() / n);
        if rows == 0 {
            return;
        }
        let width = self.steps * TILE_K;
        let row_blocks = rows.div_ceil(BLOCK);
        let chunk = (L2_INPUT_BYTES / (BLOCK * width)).max(1);
        let block_len = self.steps * TILE_BYTES;
        INPUT.with(|cell| {
            let (input, scales) = &mut *cell.borrow_mut();
            input.clear();
            input.resize(row_blocks * BLOCK * width, 128);
            scales.clear();
            for (row, dst) in x
                .chunks_exact(k)
                .take(rows)
                .zip(input.chunks_exact_mut(width))
            {
                scales.push(quantize_row(row, dst));
            }
            let mut acc = [0i32; 4 * TILE_ROWS * TILE_ROWS];
            let _tiles = TileSession::start();
            for first in (0..row_blocks).step_by(chunk) {
                for pair in 0..self.col_blocks / 2 {
                    let weights = &self.data[2 * pair * block_len..][..2 * block_len];
                    for rb in first..(first + chunk).min(row_blocks) {
                        let inputs = &input[rb * BLOCK * width..][..BLOCK * width];
                        int8_block(inputs, width, weights, self.steps, &mut acc);
                        let at = (rb * BLOCK, pair * BLOCK);
                        self.dequantize(&acc, &scales[..rows], out, at, bias);
                    }
                }
            }
        });
    }

    /// Writes the 32 × 32 block of sums at (`row0`, `col0`) into `out` (`rows × n`), for the
    /// rows and columns that exist: `s_row · s_col · (sum − offset) + bias`, in the same
    /// operations (a product, then one fused multiply-add) as the VNNI kernel's epilogue.
    fn dequantize(
        &self,
        acc: &[i32; 4 * TILE_ROWS * TILE_ROWS],
        row_scales: &[f32],
        out: &mut [f32],
        (row0, col0): (usize, usize),
        bias: &[f32],
    ) {
        let n = self.n;
        for (r, &rs) in row_scales.iter().enumerate().skip(row0).take(BLOCK) {
            let local = r - row0;
            for half in 0..2 {
                let col = col0 + half * TILE_ROWS;
                if col >= n {
                    break;
                }
                let width = TILE_ROWS.min(n - col);
                // Tile order: (rows 0-15, cols 0-15), (0-15, 16-31), (16-31, 0-15), (16-31, 16-31).
                let tile = (local / TILE_ROWS) * 2 + half;
                let sums =
                    &acc[tile * TILE_ROWS * TILE_ROWS + (local % TILE_ROWS) * TILE_ROWS..][..width];
                let dst = &mut out[r * n + col..][..width];
                let columns = (self.scale[col..col + width].iter())
                    .zip(&self.offset[col..col + width])
                    .zip(&bias[col..col + width]);
                for ((d, &s), ((&cs, &off), &b)) in dst.iter_mut().zip(sums).zip(columns) {
                    *d = (rs * cs).mul_add(s.wrapping_sub(off) as f32, b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::int8::QuantWeight;

    fn pseudo(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 43758.547).fract() - 0.5)
            .collect()
    }

    #[test]
    fn tiles_give_the_vnni_kernels_outputs_to_the_bit() {
        // Same integers, same epilogue: any difference is a layout or padding bug. Ragged
        // shapes: rows not a multiple of 16 or 32, outputs not of 16, inputs not of 4 or 64.
        if !(super::super::amx::int8_available() && super::super::int8::available()) {
            return;
        }
        for (rows, n, k) in [
            (1, 1, 1),
            (3, 33, 7),
            (17, 70, 130),
            (33, 384, 384),
            (100, 40, 1536),
            (250, 1152, 384),
        ] {
            let x = pseudo(rows * k, 1.0);
            let w = pseudo(n * k, 2.0);
            let b = pseudo(n, 3.0);
            let mut want = vec![f32::NAN; rows * n];
            QuantWeight::pack(&w, n, k).forward(&x, &mut want, &b);
            let mut got = vec![f32::NAN; rows * n];
            QuantTiles::pack(&w, n, k).forward(&x, &mut got, &b);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "{rows}x{n}x{k} [{i}]: {g} vs {w}");
            }
        }
    }

    #[test]
    fn zero_rows_give_the_bias_and_nothing_past_the_output_is_written() {
        if !super::super::amx::int8_available() {
            return;
        }
        let (n, k) = (5, 8);
        let q = QuantTiles::pack(&pseudo(n * k, 1.0), n, k);
        let b = pseudo(n, 2.0);
        let mut out = vec![f32::NAN; 2 * n + 3];
        q.forward(&[0.0; 16], &mut out[..2 * n], &b);
        assert_eq!(&out[..n], &b[..]);
        assert_eq!(&out[n..2 * n], &b[..]);
        assert!(out[2 * n..].iter().all(|v| v.is_nan()));
    }
}
