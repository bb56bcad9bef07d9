//! Dense layers on Intel AMX tiles (Sapphire Rapids and later), used instead of the AVX
//! panels of [`super::matmul`] when the CPU and the kernel allow it.
//!
//! One `tdpbf16ps` multiplies a 16 × 32 bf16 tile by a 32 × 16 bf16 tile into 16 × 16 f32
//! accumulators: on one core of these machines about 1.7 TFLOP/s against ~0.1 for AVX-512
//! FMAs. bf16 alone keeps 8 bits of mantissa, so each operand is split into a high and a
//! low bf16 (`v ≈ hi + lo`, 16 bits together) and the product is taken as
//! `hi·hi + hi·lo + lo·hi`: weights and inputs are stored as `[hi, lo]` segments along K
//! and the kernel sums three segment products.
//! The relative error per product is ~2⁻¹⁶, and the sums stay f32.
//!
//! Tiles are driven with inline assembly (the AMX intrinsics are not stable Rust), which is
//! why this module allows `unsafe`: every pointer a tile instruction reads or writes is
//! derived from a buffer sized for the whole 16-row × 64-byte tile (see the comments at
//! each call).
//!
//! Layouts: a weight of `n` outputs × `k` inputs becomes `ceil(n / 32) · 2` column blocks of
//! 16 outputs; each block holds its segments (hi, lo) of `ceil(k / 32)` tiles of 1 KB (32 K
//! values × 16 outputs, in the pair-interleaved order `tdpbf16ps` reads: tile row `r` holds,
//! for each output `c`, the K values `2r` and `2r + 1`). Inputs are converted per call into
//! rows of two segments of `ceil(k / 32) · 32` bf16, padded with zero rows to a multiple
//! of 32. The kernel computes 32 × 32 outputs at
//! a time in four accumulator tiles.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

/// Rows of a tile, and outputs per column block.
const TILE_ROWS: usize = 16;
/// bf16 values per tile row (64 bytes): the K step of one `tdpbf16ps`.
const TILE_K: usize = 32;
/// bf16 values in one tile.
const TILE_LEN: usize = TILE_ROWS * TILE_K;
/// Rows (and outputs) per kernel block: two tiles.
const BLOCK: usize = 2 * TILE_ROWS;
/// K steps per block: two columns of 12 weight tiles (24 KB) stay in a 48 KB L1.
const K_BLOCK: usize = 12;
/// Converted inputs kept hot while the weights stream by: well inside a 2 MB L2.
const L2_INPUT_BYTES: usize = 768 * 1024;

/// Whether AMX tiles with bf16 can be used: the CPU reports AMX-TILE and AMX-BF16, the
/// kernel grants the process the tile state, and `KEEL_EMBED_AMX` is not `0`.
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let disabled = std::env::var("KEEL_EMBED_AMX").is_ok_and(|v| v.trim() == "0");
        !disabled && sys::detect()
    })
}

/// How products are taken on the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    /// `hi·hi + hi·lo + lo·hi` (~2⁻¹⁶ relative error per product): the default.
    Split,
    /// One bf16 rounding of each operand (~2⁻⁹): three times less work and a third of
    /// the weight bytes, for callers that accept it (`KEEL_EMBED_PRECISION=bf16`).
    Bf16,
}

impl Precision {
    /// `KEEL_EMBED_PRECISION` (`bf16` or `split`), [`Precision::Split`] by default.
    pub(crate) fn from_env() -> Self {
        match std::env::var("KEEL_EMBED_PRECISION") {
            Ok(v) if v.trim().eq_ignore_ascii_case("bf16") => Precision::Bf16,
            _ => Precision::Split,
        }
    }

    /// The (input segment, weight segment) products summed: `[x_hi, x_lo]` against
    /// `[W_hi, W_lo]` as hi·hi + hi·lo + lo·hi, or `[x]` against `[W]`.
    fn products(self) -> &'static [(usize, usize)] {
        match self {
            Precision::Split => &[(0, 0), (0, 1), (1, 0)],
            Precision::Bf16 => &[(0, 0)],
        }
    }

    fn stored_segments(self) -> usize {
        match self {
            Precision::Split => 2,
            Precision::Bf16 => 1,
        }
    }
}

/// A weight packed into AMX tiles (see the module docs).
pub(crate) struct Tiles {
    k: usize,
    n: usize,
    precision: Precision,
    /// Tiles per segment: `k` rounded up to [`TILE_K`], so segments start on tiles.
    seg: usize,
    /// Column blocks of [`TILE_ROWS`] outputs (even).
    col_blocks: usize,
    data: Vec<u16>,
}

thread_local! {
    /// Per-thread input buffer, reused across calls (a forward pass makes dozens).
    static INPUT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

impl Tiles {
    /// Packs a PyTorch-layout weight (`n` rows of `k` inputs, row-major).
    pub(crate) fn pack(weight: &[f32], n: usize, k: usize, precision: Precision) -> Self {
        let seg = k.div_ceil(TILE_K);
        let stored = precision.stored_segments() * seg;
        let col_blocks = n.div_ceil(BLOCK) * 2;
        let mut data = vec![0u16; col_blocks * stored * TILE_LEN];
        for (col, w) in weight.chunks_exact(k).take(n).enumerate() {
            let block = &mut data[(col / TILE_ROWS) * stored * TILE_LEN..][..stored * TILE_LEN];
            let c = col % TILE_ROWS;
            for (kk, &v) in w.iter().enumerate() {
                let (hi, lo) = split(v);
                for (segment, part) in [hi, lo].into_iter().enumerate() {
                    if segment >= precision.stored_segments() {
                        break;
                    }
                    let (step, r, e) = (kk / TILE_K, (kk % TILE_K) / 2, kk % 2);
                    let tile = segment * seg + step;
                    block[tile * TILE_LEN + r * TILE_K + c * 2 + e] = part;
                }
            }
        }
        Self {
            k,
            n,
            precision,
            seg,
            col_blocks,
            data,
        }
    }

    /// `out = x Wᵀ + bias` for `x` of `rows × k` and `out` of `rows × n`, on this thread.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32], bias: &[f32]) {
        self.forward_columns(x, out, bias, 0..self.column_pairs());
    }

    /// Column pairs (of 32 outputs) of the packed weight.
    pub(crate) fn column_pairs(&self) -> usize {
        self.col_blocks / 2
    }

    /// Outputs in column pairs `pairs`.
    pub(crate) fn columns_in(&self, pairs: &Range<usize>) -> Range<usize> {
        (pairs.start * BLOCK).min(self.n)..(pairs.end * BLOCK).min(self.n)
    }

    /// [`Tiles::forward`] for the outputs of column pairs `pairs` only: `out` is `rows ×
    /// columns_in(pairs).len()`.
    pub(crate) fn forward_columns(
        &self,
        x: &[f32],
        out: &mut [f32],
        bias: &[f32],
        pairs: Range<usize>,
    ) {
        let k = self.k;
        let columns = self.columns_in(&pairs);
        let rows = (x.len() / k).min(out.len() / columns.len().max(1));
        if rows == 0 || columns.is_empty() {
            return;
        }
        let products = self.precision.products();
        let seg_width = self.seg * TILE_K;
        let width = self.precision.stored_segments() * seg_width;
        let row_blocks = rows.div_ceil(BLOCK);
        // Row blocks taken together while every column block streams by: their inputs
        // stay in L2 (re-reading all inputs once per column block went to L3 and cost
        // more than the multiplies).
        let chunk = (L2_INPUT_BYTES / (BLOCK * width * 2)).max(1);
        INPUT.with(|cell| {
            let mut input = cell.borrow_mut();
            input.clear();
            input.resize(row_blocks * BLOCK * width, 0);
            for (row, dst) in x.chunks_exact(k).zip(input.chunks_exact_mut(width)) {
                match self.precision {
                    Precision::Split => {
                        let (first, second) = dst.split_at_mut(seg_width);
                        for ((v, a), b) in row.iter().zip(first).zip(second) {
                            (*a, *b) = split(*v);
                        }
                    }
                    Precision::Bf16 => {
                        for (v, a) in row.iter().zip(dst) {
                            *a = to_bf16(*v);
                        }
                    }
                }
            }
            // (input tile, weight tile) of every K step, cut into blocks whose two weight
            // columns stay in L1 while the chunk's row blocks pass under them; the
            // accumulators are parked in `acc` between blocks.
            let steps: Vec<(usize, usize)> = products
                .iter()
                .flat_map(|&(i, w)| {
                    (0..self.seg).map(move |t| (i * self.seg + t, w * self.seg + t))
                })
                .collect();
            let stored = self.precision.stored_segments() * self.seg;
            let block_len = stored * TILE_LEN;
            let mut acc = vec![[0.0f32; 4 * TILE_ROWS * TILE_ROWS]; chunk.min(row_blocks)];
            let _tiles = sys::TileSession::start();
            for first in (0..row_blocks).step_by(chunk) {
                let chunk_rows = first..(first + chunk).min(row_blocks);
                for pair in pairs.clone() {
                    let cb = 2 * pair;
                    let weights = &self.data[cb * block_len..][..2 * block_len];
                    for (kb, k_steps) in steps.chunks(K_BLOCK).enumerate() {
                        for (rb, acc) in chunk_rows.clone().zip(acc.iter_mut()) {
                            let inputs = &input[rb * BLOCK * width..][..BLOCK * width];
                            sys::block(inputs, width, weights, stored, k_steps, kb > 0, acc);
                        }
                    }
                    for (rb, acc) in chunk_rows.clone().zip(&acc) {
                        let at = (rb * BLOCK, cb * TILE_ROWS);
                        self.scatter(acc, out, rows, at, &columns, bias);
                    }
                }
            }
        });
    }

    /// Adds the bias to the 32 × 32 block of accumulators at (`row0`, `col0`) and writes
    /// its rows and columns that exist into `out`, which holds output `columns`.
    fn scatter(
        &self,
        acc: &[f32; 4 * TILE_ROWS * TILE_ROWS],
        out: &mut [f32],
        rows: usize,
        (row0, col0): (usize, usize),
        columns: &Range<usize>,
        bias: &[f32],
    ) {
        let n = self.n;
        let stride = columns.len();
        for r in 0..BLOCK.min(rows - row0) {
            for half in 0..2 {
                let col = col0 + half * TILE_ROWS;
                if col >= n {
                    break;
                }
                let width = TILE_ROWS.min(n - col);
                // Tile order: (rows 0-15, cols 0-15), (0-15, 16-31), (16-31, 0-15), (16-31, 16-31).
                let tile = (r / TILE_ROWS) * 2 + half;
                let src =
                    &acc[tile * TILE_ROWS * TILE_ROWS + (r % TILE_ROWS) * TILE_ROWS..][..width];
                let dst = &mut out[(row0 + r) * stride + col - columns.start..][..width];
                for ((d, s), b) in dst.iter_mut().zip(src).zip(&bias[col..col + width]) {
                    *d = s + b;
                }
            }
        }
    }
}

/// `v ≈ hi + lo` with both halves bf16 (round to nearest even).
#[inline(always)]
fn split(v: f32) -> (u16, u16) {
    let hi = to_bf16(v);
    let lo = to_bf16(v - f32::from_bits(u32::from(hi) << 16));
    (hi, lo)
}

#[inline(always)]
fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code)]
mod sys {
    use super::{BLOCK, TILE_K, TILE_LEN, TILE_ROWS};
    use std::arch::asm;

    /// `arch_prctl` and its request for the AMX tile-data state component.
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;

    pub(super) fn detect() -> bool {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        if __cpuid(0).eax < 7 {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        let (amx_bf16, amx_tile) = (edx >> 22 & 1 == 1, edx >> 24 & 1 == 1);
        if !(amx_bf16 && amx_tile) {
            return false;
        }
        let ret: i64;
        // SAFETY: the arch_prctl system call with integer arguments only; it changes which
        // state components the kernel lets this process use, nothing in our memory.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }

    /// The palette-1 tile configuration: eight tiles of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    /// Tiles configured on this thread; released on drop.
    pub(super) struct TileSession(());

    impl TileSession {
        pub(super) fn start() -> Self {
            let mut config = Config([0; 64]);
            config.0[0] = 1;
            for tile in 0..8 {
                config.0[16 + 2 * tile] = 64; // bytes per row (u16, little-endian)
                config.0[48 + tile] = TILE_ROWS as u8;
            }
            // SAFETY: reads the 64-byte configuration above; only called once `detect`
            // returned true (the kernel granted the tile state).
            unsafe {
                asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly))
            };
            Self(())
        }
    }

    impl Drop for TileSession {
        fn drop(&mut self) {
            // SAFETY: clears this thread's tile state; touches no memory.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
        }
    }

    /// One K block of a 32 × 32 output block: `inputs` holds 32 rows of `width` bf16,
    /// `weights` two column blocks of `stored` tiles; for each `(a, w)` of `steps`, input
    /// tile column `a` times weight tile `w` is added to the accumulators, which start at
    /// zero or, with `resume`, at `acc`. `acc` receives the four f32 tiles (row-major
    /// 16 × 16 each).
    #[inline(always)]
    pub(super) fn block(
        inputs: &[u16],
        width: usize,
        weights: &[u16],
        stored: usize,
        steps: &[(usize, usize)],
        resume: bool,
        acc: &mut [f32; 4 * TILE_ROWS * TILE_ROWS],
    ) {
        // Every tile load below reads 16 rows of 64 bytes: input rows r..r+16 at columns
        // a·32..a·32+32 (inside a row of `width`), or one 1 KB weight tile w < stored of a
        // column block. These bounds keep all of them in the slices.
        assert!(inputs.len() >= BLOCK * width && weights.len() >= 2 * stored * TILE_LEN);
        assert!(
            steps
                .iter()
                .all(|&(a, w)| (a + 1) * TILE_K <= width && w < stored)
        );
        let stride_in = width * 2;
        let (a0, a1) = (inputs.as_ptr(), inputs[TILE_ROWS * width..].as_ptr());
        let (b0, b1) = (weights.as_ptr(), weights[stored * TILE_LEN..].as_ptr());
        // The four accumulator tiles, 1 KB each, row stride 64 bytes.
        let tile = TILE_ROWS * TILE_ROWS;
        let c = acc.as_mut_ptr();
        let cs = [
            c,
            c.wrapping_add(tile),
            c.wrapping_add(2 * tile),
            c.wrapping_add(3 * tile),
        ];
        let stride_acc = TILE_ROWS * 4;
        // SAFETY: tile registers are not used by compiled code; the loads stay inside
        // `inputs` and `weights` (asserted above), the accumulator loads and stores inside
        // `acc` (4 × 1 KB).
        unsafe {
            if resume {
                asm!(
                    "tileloadd tmm0, [{c0} + {sc}]",
                    "tileloadd tmm1, [{c1} + {sc}]",
                    "tileloadd tmm2, [{c2} + {sc}]",
                    "tileloadd tmm3, [{c3} + {sc}]",
                    c0 = in(reg) cs[0],
                    c1 = in(reg) cs[1],
                    c2 = in(reg) cs[2],
                    c3 = in(reg) cs[3],
                    sc = in(reg) stride_acc,
                    options(nostack, readonly),
                );
            } else {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
            }
            for &(a, w) in steps {
                asm!(
                    "tileloadd tmm4, [{a0} + {sa}]",
                    "tileloadd tmm6, [{b0} + {sb}]",
                    "tileloadd tmm5, [{a1} + {sa}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm7, [{b1} + {sb}]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0.add(a * TILE_K),
                    a1 = in(reg) a1.add(a * TILE_K),
                    b0 = in(reg) b0.add(w * TILE_LEN),
                    b1 = in(reg) b1.add(w * TILE_LEN),
                    sa = in(reg) stride_in,
                    sb = in(reg) TILE_K * 2,
                    options(nostack, readonly),
                );
            }
            asm!(
                "tilestored [{c0} + {sc}], tmm0",
                "tilestored [{c1} + {sc}], tmm1",
                "tilestored [{c2} + {sc}], tmm2",
                "tilestored [{c3} + {sc}], tmm3",
                c0 = in(reg) cs[0],
                c1 = in(reg) cs[1],
                c2 = in(reg) cs[2],
                c3 = in(reg) cs[3],
                sc = in(reg) stride_acc,
                options(nostack),
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod sys {
    use super::TILE_ROWS;

    pub(super) fn detect() -> bool {
        false
    }

    pub(super) struct TileSession(());

    impl TileSession {
        pub(super) fn start() -> Self {
            Self(())
        }
    }

    /// Never called: [`super::available`] is false here.
    pub(super) fn block(
        _: &[u16],
        _: usize,
        _: &[u16],
        _: usize,
        _: &[(usize, usize)],
        _: bool,
        _: &mut [f32; 4 * TILE_ROWS * TILE_ROWS],
    ) {
    }
}
