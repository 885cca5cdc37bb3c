//! 16-bit integer products for x86 (AVX-512 VNNI, AVX-512BW, AVX2).
//!
//! Each weight column and each row of `A` is scaled to integers in
//! `±LEVELS` (12 bits) and the pairs are multiplied with `vpmaddwd`, which
//! does twice the multiply-adds per instruction of an f32 FMA (with VNNI,
//! `vpdpwssd` also adds them to the sums in the same instruction); weights
//! take half the memory of f32. Integer sums are exact; they are turned back into
//! floats after every `KC_PAIRS` pairs of depth, few enough that no sum can
//! overflow (`2 · KC_PAIRS · LEVELS² < 2³¹`). Measured against the numpy
//! reference this costs about 1e-5 of cosine (f32: 4e-12); 11 bits cost 5e-5.

use core::arch::x86_64::{__m256, __m256i, __m512, __m512i};
use pulp::bytemuck::cast;
use pulp::x86::{V3, V4};

pulp::simd_type! {
    /// AVX-512 with VNNI (Ice Lake and later, Zen 4): `vpdpwssd` multiplies
    /// the 16-bit pairs and adds them to the 32-bit sums in one instruction,
    /// where plain AVX-512 needs `vpmaddwd` and then `vpaddd`. The sums are
    /// exact either way (no pair product or sum can overflow, see
    /// `KC_PAIRS`), so both give the same bits.
    pub(crate) struct V4Vnni {
        pub sse: "sse",
        pub sse2: "sse2",
        pub fxsr: "fxsr",
        pub sse3: "sse3",
        pub ssse3: "ssse3",
        pub sse4_1: "sse4.1",
        pub sse4_2: "sse4.2",
        pub popcnt: "popcnt",
        pub avx: "avx",
        pub avx2: "avx2",
        pub bmi1: "bmi1",
        pub bmi2: "bmi2",
        pub fma: "fma",
        pub lzcnt: "lzcnt",
        pub avx512f: "avx512f",
        pub avx512bw: "avx512bw",
        pub avx512cd: "avx512cd",
        pub avx512dq: "avx512dq",
        pub avx512vl: "avx512vl",
        pub avx512vnni: "avx512vnni",
    }
}

/// Largest quantised magnitude.
const LEVELS: f32 = 2047.0;
/// Pairs of depth summed in i32 before converting to f32.
const KC_PAIRS: usize = 128;
const _: () = assert!(2 * KC_PAIRS * 2047 * 2047 < i32::MAX as usize);

/// A `k × n` weight matrix as 12-bit integers in column panels.
#[derive(Debug)]
pub(crate) struct QuantizedMatrix {
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) width: usize,
    /// `ceil(n / width)` panels of `ceil(k / 2) × width` pairs: the low half
    /// holds row `2p`, the high half row `2p + 1` (zero past `k` and `n`).
    panels: Vec<i32>,
    /// Per column: the value of one integer step (zero past `n`).
    scale: Vec<f32>,
}

impl QuantizedMatrix {
    /// Quantises a row-major `k × n` matrix, one scale per column.
    pub(crate) fn new(weights: &[f32], k: usize, n: usize, width: usize) -> QuantizedMatrix {
        assert_eq!(weights.len(), k * n, "weights are not {k} x {n}");
        let pairs = k.div_ceil(2);
        let n_panels = n.div_ceil(width);
        let mut scale = vec![0.0; n_panels * width];
        let mut panels = vec![0; n_panels * pairs * width];
        for j in 0..n {
            let max = (0..k).map(|r| weights[r * n + j].abs()).fold(0.0, f32::max);
            scale[j] = max / LEVELS;
            let inv = if max > 0.0 { LEVELS / max } else { 0.0 };
            let (p, c) = (j / width, j % width);
            let panel = &mut panels[p * pairs * width..(p + 1) * pairs * width];
            for pair in 0..pairs {
                let lo = quantize(weights[2 * pair * n + j], inv);
                let hi = if 2 * pair + 1 < k { quantize(weights[(2 * pair + 1) * n + j], inv) } else { 0 };
                panel[pair * width + c] = join(lo, hi);
            }
        }
        QuantizedMatrix { k, n, width, panels, scale }
    }
}

fn quantize(v: f32, inv: f32) -> i16 {
    round_small(v * inv)
}

/// `v` rounded to the nearest integer (ties to even), for `|v| < 2¹⁵`.
/// Adding 1.5·2²³ leaves the integer in the low mantissa bits; unlike a
/// saturating `as i16`, this vectorises.
#[inline(always)]
fn round_small(v: f32) -> i16 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC).to_bits() as i16
}

fn join(lo: i16, hi: i16) -> i32 {
    (u32::from(lo as u16) | (u32::from(hi as u16) << 16)) as i32
}

/// Quantised rows of `A` for one product, reused across calls.
#[derive(Default)]
pub(crate) struct QuantizedRows {
    /// Tile by tile (`mr` rows), each `pairs × rows`, interleaved.
    pairs: Vec<i32>,
    /// Per row: the value of one integer step.
    scale: Vec<f32>,
    /// One row's pairs before they are interleaved.
    row: Vec<i32>,
}

/// Quantises `a[offsets[r]..][..k]` row by row into `q`.
#[inline(always)]
fn quantize_rows(a: &[f32], offsets: &[usize], k: usize, mr: usize, q: &mut QuantizedRows) {
    let pairs = k.div_ceil(2);
    q.pairs.clear();
    q.pairs.resize(offsets.len() * pairs, 0);
    q.scale.clear();
    q.row.clear();
    q.row.resize(pairs, 0);
    for (t, tile) in offsets.chunks(mr).enumerate() {
        let rows = tile.len();
        let block = &mut q.pairs[t * mr * pairs..t * mr * pairs + rows * pairs];
        for (r, &o) in tile.iter().enumerate() {
            let row = &a[o..o + k];
            // The largest magnitude, as bits: for finite floats their order
            // is the order of the unsigned integers, which vectorises.
            let max = f32::from_bits(row.iter().map(|v| v.to_bits() & 0x7fff_ffff).max().unwrap_or(0));
            q.scale.push(max / LEVELS);
            let inv = if max > 0.0 { LEVELS / max } else { 0.0 };
            // Little-endian: the i16 at 2p is the low half of pair p.
            let halves: &mut [i16] = pulp::bytemuck::cast_slice_mut(&mut q.row);
            for (h, &v) in halves.iter_mut().zip(row) {
                *h = round_small(v * inv);
            }
            if k % 2 == 1 {
                halves[k] = 0;
            }
            for (dst, &pair) in block[r..].iter_mut().step_by(rows).zip(&q.row) {
                *dst = pair;
            }
        }
    }
}

/// The operations a pairwise-integer tile needs, for one SIMD level.
trait PairLanes: Copy {
    type I: Copy;
    /// One vector of i32 (pairs of i16) or f32, as an array.
    type Ints: Copy;
    type Floats: Copy + AsRef<[f32]>;
    fn zero(self) -> Self::I;
    fn splat(self, pair: i32) -> Self::I;
    fn load(self, w: Self::Ints) -> Self::I;
    /// `acc + Σ pairs x·w`.
    fn madd(self, acc: Self::I, x: Self::I, w: Self::I) -> Self::I;
    /// `prev + acc · scale · col_scale`.
    fn finish(self, acc: Self::I, scale: f32, col_scale: Self::Floats, prev: Self::Floats) -> Self::Floats;
    fn panel(pairs: &[i32]) -> &[[Self::Ints; 2]];
    /// The first lanes of `values`.
    fn floats(values: &[f32]) -> Self::Floats;
}

/// `PairLanes` for an AVX-512 level: the two differ only in `madd`, given
/// as `|simd, acc, x, w| expression`.
macro_rules! avx512_pair_lanes {
    ($level:ty, |$simd:ident, $acc:ident, $x:ident, $w:ident| $madd:expr) => {
        impl PairLanes for $level {
            type I = __m512i;
            type Ints = [i32; 16];
            type Floats = [f32; 16];
            #[inline(always)]
            fn zero(self) -> __m512i {
                self.avx512f._mm512_setzero_si512()
            }
            #[inline(always)]
            fn splat(self, pair: i32) -> __m512i {
                self.avx512f._mm512_set1_epi32(pair)
            }
            #[inline(always)]
            fn load(self, w: [i32; 16]) -> __m512i {
                cast(w)
            }
            #[inline(always)]
            fn madd(self, acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
                let ($simd, $acc, $x, $w) = (self, acc, x, w);
                $madd
            }
            #[inline(always)]
            fn finish(self, acc: __m512i, scale: f32, col_scale: [f32; 16], prev: [f32; 16]) -> [f32; 16] {
                let f = self.avx512f;
                let s: __m512 = f._mm512_mul_ps(f._mm512_set1_ps(scale), cast(col_scale));
                cast(f._mm512_fmadd_ps(f._mm512_cvtepi32_ps(acc), s, cast(prev)))
            }
            #[inline(always)]
            fn panel(pairs: &[i32]) -> &[[[i32; 16]; 2]] {
                pairs.as_chunks::<16>().0.as_chunks::<2>().0
            }
            #[inline(always)]
            fn floats(values: &[f32]) -> [f32; 16] {
                *values.first_chunk().expect("16 lanes")
            }
        }
    };
}

avx512_pair_lanes!(V4, |simd, acc, x, w| simd.avx512f._mm512_add_epi32(acc, simd.avx512bw._mm512_madd_epi16(x, w)));

// pulp's VNNI token wraps no intrinsics, so this is the crate's one `unsafe`:
// 30% off a long message's encoding (1.44 → 1.01 ms on one core), the same
// bits as `vpmaddwd` + `vpaddd`.
avx512_pair_lanes!(V4Vnni, |simd, acc, x, w| {
    // SAFETY: `_mm512_dpwssd_epi32` only needs AVX-512F and VNNI, and a
    // `V4Vnni` (its `avx512vnni` field here) exists only on a CPU that has
    // them: `try_new` checks, and `new_unchecked` is itself `unsafe`.
    let _proof = simd.avx512vnni;
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_mm512_dpwssd_epi32(acc, x, w)
    }
});

impl PairLanes for V3 {
    type I = __m256i;
    type Ints = [i32; 8];
    type Floats = [f32; 8];
    #[inline(always)]
    fn zero(self) -> __m256i {
        self.avx._mm256_setzero_si256()
    }
    #[inline(always)]
    fn splat(self, pair: i32) -> __m256i {
        self.avx._mm256_set1_epi32(pair)
    }
    #[inline(always)]
    fn load(self, w: [i32; 8]) -> __m256i {
        cast(w)
    }
    #[inline(always)]
    fn madd(self, acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        self.avx2._mm256_add_epi32(acc, self.avx2._mm256_madd_epi16(x, w))
    }
    #[inline(always)]
    fn finish(self, acc: __m256i, scale: f32, col_scale: [f32; 8], prev: [f32; 8]) -> [f32; 8] {
        let s: __m256 = self.avx._mm256_mul_ps(self.avx._mm256_set1_ps(scale), cast(col_scale));
        cast(self.fma._mm256_fmadd_ps(self.avx._mm256_cvtepi32_ps(acc), s, cast(prev)))
    }
    #[inline(always)]
    fn panel(pairs: &[i32]) -> &[[[i32; 8]; 2]] {
        pairs.as_chunks::<8>().0.as_chunks::<2>().0
    }
    #[inline(always)]
    fn floats(values: &[f32]) -> [f32; 8] {
        *values.first_chunk().expect("8 lanes")
    }
}

/// A SIMD level that has a pairwise-integer kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    V4Vnni(V4Vnni),
    V4(V4),
    V3(V3),
}

impl Level {
    /// The best level this CPU offers.
    pub(crate) fn detect() -> Option<Level> {
        (V4Vnni::try_new().map(Level::V4Vnni))
            .or_else(|| V4::try_new().map(Level::V4))
            .or_else(|| V3::try_new().map(Level::V3))
    }

    /// Panel width: two vectors of i32 lanes.
    pub(crate) fn width(self) -> usize {
        match self {
            Level::V4Vnni(_) | Level::V4(_) => 32,
            Level::V3(_) => 16,
        }
    }

    /// Rows per register tile: 2 accumulators per row, plus two weight
    /// vectors and a broadcast, in 32 (AVX-512) or 16 (AVX2) registers.
    pub(crate) fn mr(self) -> usize {
        match self {
            Level::V4Vnni(_) | Level::V4(_) => 12,
            Level::V3(_) => 6,
        }
    }

    /// `out[r] = a[offsets[r]..][..k] · b + bias`, as [`super::Matmul::product`].
    pub(crate) fn product(
        self,
        a: &[f32],
        offsets: &[usize],
        b: &QuantizedMatrix,
        bias: &[f32],
        out: &mut [f32],
        rows: &mut QuantizedRows,
    ) {
        let job = Job { a, offsets, mr: self.mr(), b, bias, out, rows };
        // `inline(always)` all the way down, so the intrinsics are inlined
        // into the function that enables the target features.
        match self {
            Level::V4Vnni(simd) => simd.vectorize(
                #[inline(always)]
                || job.run(simd),
            ),
            Level::V4(simd) => simd.vectorize(
                #[inline(always)]
                || job.run(simd),
            ),
            Level::V3(simd) => simd.vectorize(
                #[inline(always)]
                || job.run(simd),
            ),
        }
    }
}

struct Job<'a> {
    a: &'a [f32],
    offsets: &'a [usize],
    mr: usize,
    b: &'a QuantizedMatrix,
    bias: &'a [f32],
    out: &'a mut [f32],
    rows: &'a mut QuantizedRows,
}

impl Job<'_> {
    #[inline(always)]
    fn run<S: PairLanes>(self, simd: S) {
        let Job { a, offsets, mr, b, bias, out, rows: q } = self;
        let (m, n, width) = (offsets.len(), b.n, b.width);
        let pairs = b.k.div_ceil(2);
        assert_eq!(width, 2 * core::mem::size_of::<S::Floats>() / 4, "matrix packed for another SIMD level");
        quantize_rows(a, offsets, b.k, mr, q);
        for p0 in (0..pairs).step_by(KC_PAIRS) {
            let pc = KC_PAIRS.min(pairs - p0);
            for (p, panel) in b.panels.chunks_exact(pairs * width).enumerate() {
                let col = p * width;
                let slab = &S::panel(panel)[p0..p0 + pc];
                let mut r0 = 0;
                while r0 < m {
                    let rows = (m - r0).min(mr);
                    let a = &q.pairs[r0 * pairs + p0 * rows..r0 * pairs + (p0 + pc) * rows];
                    let at = Tile {
                        col,
                        cols: width.min(n - col),
                        n,
                        row_scale: &q.scale[r0..r0 + rows],
                        col_scale: &b.scale[col..col + width],
                        first: (p0 == 0).then_some(bias),
                    };
                    let out = &mut out[r0 * n..(r0 + rows) * n];
                    tile_for_rows!(rows, tile::<S>(simd, a, slab, out, at));
                    r0 += rows;
                }
            }
        }
    }
}

/// Where a tile's results go and how to scale them.
#[derive(Clone, Copy)]
struct Tile<'a> {
    col: usize,
    cols: usize,
    n: usize,
    row_scale: &'a [f32],
    col_scale: &'a [f32],
    /// On the first depth slab results start from the bias; later slabs add
    /// to what the previous ones stored.
    first: Option<&'a [f32]>,
}

/// `R` rows × one panel × one depth slab.
#[inline(always)]
fn tile<S: PairLanes, const R: usize>(simd: S, a: &[i32], slab: &[[S::Ints; 2]], out: &mut [f32], at: Tile) {
    let mut acc = [[simd.zero(); 2]; R];
    for (av, bv) in a.as_chunks::<R>().0.iter().zip(slab) {
        let (b0, b1) = (simd.load(bv[0]), simd.load(bv[1]));
        for r in 0..R {
            let x = simd.splat(av[r]);
            acc[r][0] = simd.madd(acc[r][0], x, b0);
            acc[r][1] = simd.madd(acc[r][1], x, b1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = &mut out[r * at.n + at.col..r * at.n + at.col + at.cols];
        let prev = match at.first {
            Some(bias) => &bias[at.col..at.col + at.cols],
            None => &*row,
        };
        let lanes = size_of::<S::Floats>() / 4;
        if at.cols == 2 * lanes {
            let p = [S::floats(&prev[..lanes]), S::floats(&prev[lanes..])];
            for (half, (acc, p)) in acc.iter().zip(p).enumerate() {
                let s = S::floats(&at.col_scale[half * lanes..]);
                let result = simd.finish(*acc, at.row_scale[r], s, p);
                row[half * lanes..(half + 1) * lanes].copy_from_slice(result.as_ref());
            }
        } else {
            // A ragged last panel: through buffers as wide as the panel.
            let mut wide = [0.0; 64];
            wide[..at.cols].copy_from_slice(prev);
            for (half, acc) in acc.iter().enumerate() {
                let p = S::floats(&wide[half * lanes..]);
                let s = S::floats(&at.col_scale[half * lanes..]);
                let result = simd.finish(*acc, at.row_scale[r], s, p);
                wide[half * lanes..(half + 1) * lanes].copy_from_slice(result.as_ref());
            }
            row.copy_from_slice(&wide[..at.cols]);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The product the integer kernels compute, in scalar code: both
    /// operands quantised exactly as the kernels do, summed in i64.
    fn quantized_reference(a: &[f32], offsets: &[usize], w: &[f32], k: usize, n: usize, bias: &[f32]) -> Vec<f32> {
        let b = QuantizedMatrix::new(w, k, n, n);
        let mut rows = QuantizedRows::default();
        quantize_rows(a, offsets, k, 1, &mut rows);
        let pairs = k.div_ceil(2);
        let mut out = Vec::new();
        for (r, &sa) in rows.scale.iter().enumerate() {
            for (j, (&bias, &sw)) in bias.iter().zip(&b.scale).enumerate() {
                let mut sum = 0i64;
                for p in 0..pairs {
                    let x = rows.pairs[r * pairs + p];
                    let y = b.panels[p * n + j];
                    sum += i64::from(x as i16) * i64::from(y as i16) + i64::from(x >> 16) * i64::from(y >> 16);
                }
                out.push(bias + sum as f32 * sa * sw);
            }
        }
        out
    }

    fn check(level: Level) {
        let width = level.width();
        for (m, k, n) in [(1, 1, 1), (7, 13, 40), (13, 5, 17), (20, 300, 64), (30, 600, 50), (25, 1280, 33)] {
            let a: Vec<f32> = (0..(m + 3) * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let offsets: Vec<usize> = (0..m).map(|r| r * 3).collect();
            let b = QuantizedMatrix::new(&w, k, n, width);
            let mut out = vec![f32::NAN; m * n];
            level.product(&a, &offsets, &b, &bias, &mut out, &mut QuantizedRows::default());
            let want = quantized_reference(&a, &offsets, &w, k, n, &bias);
            for (i, (x, y)) in out.iter().zip(&want).enumerate() {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "m={m} k={k} n={n} [{i}]: {x} vs {y}");
            }
        }
    }

    #[test]
    fn rounding_matches_round_ties_even() {
        for v in [-2047.0, -2046.5, -1.5, -0.5, -0.49, 0.0, 0.5, 1.5, 2.5, 1000.7, 2047.0] {
            assert_eq!(round_small(v), v.round_ties_even() as i16, "{v}");
        }
    }

    #[test]
    fn avx512_matches_the_scalar_quantized_product() {
        if let Some(v4) = V4::try_new() {
            check(Level::V4(v4));
        }
    }

    #[test]
    fn avx512_vnni_matches_the_scalar_quantized_product() {
        if let Some(vnni) = V4Vnni::try_new() {
            check(Level::V4Vnni(vnni));
        }
    }

    /// VNNI fuses the multiply and the add of the same exact integer sums:
    /// the encoder's output must not depend on which of the two a CPU has.
    #[test]
    fn avx512_with_and_without_vnni_agree_bit_for_bit() {
        let (Some(vnni), Some(v4)) = (V4Vnni::try_new(), V4::try_new()) else { return };
        for (m, k, n) in [(1, 1280, 512), (13, 768, 256), (7, 5, 40)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 480.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let offsets: Vec<usize> = (0..m).map(|r| r * k).collect();
            let b = QuantizedMatrix::new(&w, k, n, 32);
            let run = |level: Level| {
                let mut out = vec![0.0; m * n];
                level.product(&a, &offsets, &b, &bias, &mut out, &mut QuantizedRows::default());
                out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            assert_eq!(run(Level::V4Vnni(vnni)), run(Level::V4(v4)), "m={m} k={k} n={n}");
        }
    }

    #[test]
    fn avx2_matches_the_scalar_quantized_product() {
        if let Some(v3) = V3::try_new() {
            check(Level::V3(v3));
        }
    }
}
