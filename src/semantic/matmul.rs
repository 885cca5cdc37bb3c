//! The encoder's one numeric kernel: `out = A · B + bias` for a constant
//! weight matrix `B`, with SIMD chosen at run time.
//!
//! `pulp` dispatches to AVX-512, AVX2+FMA, NEON or scalar code (the only
//! `unsafe` is the VNNI instruction in `quantized`, which pulp does not
//! wrap). `B` is packed once at load time into column
//! panels, each `k × width` contiguous (width = two SIMD vectors). A tile of
//! up to 12 result rows × one panel accumulates in registers while the kernel
//! streams a depth slab of `KC` panel rows, which stays in L1 for every row
//! tile. That suits a single short query (a handful of rows: the cost is
//! reading the weights once) and a batch (each slab is reused by every tile).
//!
//! On x86 with AVX2 or AVX-512 the weights are 12-bit integers instead and
//! the product runs in 16-bit integer pairs ([`quantized`]): twice the
//! multiply-adds per instruction, half the bytes of weights to stream.
//!
//! The rows of `A` are given as offsets into a buffer rather than as a dense
//! matrix: the n-gram convolutions read overlapping windows of a padded
//! token buffer directly, with no im2col copy.

use pulp::{Arch, Simd, WithSimd};

#[cfg(target_arch = "x86_64")]
/// Calls `tile::<S, R>(args…)` with the tile's row count `R` (1 to 12) as
/// a constant, so that each height gets its own fully unrolled kernel.
macro_rules! tile_for_rows {
    ($rows:expr, $tile:ident::<$s:ty>($($arg:expr),* $(,)?)) => {
        match $rows {
            12 => $tile::<$s, 12>($($arg),*),
            11 => $tile::<$s, 11>($($arg),*),
            10 => $tile::<$s, 10>($($arg),*),
            9 => $tile::<$s, 9>($($arg),*),
            8 => $tile::<$s, 8>($($arg),*),
            7 => $tile::<$s, 7>($($arg),*),
            6 => $tile::<$s, 6>($($arg),*),
            5 => $tile::<$s, 5>($($arg),*),
            4 => $tile::<$s, 4>($($arg),*),
            3 => $tile::<$s, 3>($($arg),*),
            2 => $tile::<$s, 2>($($arg),*),
            _ => $tile::<$s, 1>($($arg),*),
        }
    };
}

mod quantized;
#[cfg(target_arch = "x86_64")]
use quantized::{Level, QuantizedMatrix, QuantizedRows};

/// Rows of the result computed together: 6 × 2 vectors = 12 accumulators
/// leave room for the two weight vectors and the broadcast in AVX2's 16
/// registers; with 32 registers (AVX-512, NEON) 12 rows fit.
const MR_16_REGS: usize = 6;
const MR_32_REGS: usize = 12;
/// Depth of one pass over a panel: a `KC × width` slab of weights (32 KiB at
/// AVX-512 width) stays in L1 while every row tile uses it.
const KC: usize = 256;
/// Upper bound on a panel's width, for the stack buffer of a ragged panel
/// (2 × 16 lanes, the widest SIMD vectors pulp offers).
const MAX_WIDTH: usize = 32;

/// A `k × n` weight matrix ready for [`Matmul::product`]: 12-bit integers
/// where the CPU has a pairwise-integer kernel (x86 with AVX2 or AVX-512),
/// else f32.
#[derive(Debug)]
pub(crate) enum PackedMatrix {
    Float(FloatMatrix),
    #[cfg(target_arch = "x86_64")]
    Quantized(QuantizedMatrix),
}

impl PackedMatrix {
    fn k_n(&self) -> (usize, usize) {
        match self {
            PackedMatrix::Float(b) => (b.k, b.n),
            #[cfg(target_arch = "x86_64")]
            PackedMatrix::Quantized(b) => (b.k, b.n),
        }
    }
}

/// Working memory for [`Matmul::product`], reused across calls.
#[derive(Default)]
pub(crate) struct ProductScratch {
    /// Rows of `A` interleaved tile by tile (`k × rows`), for f32 matrices.
    floats: Vec<f32>,
    #[cfg(target_arch = "x86_64")]
    quantized: QuantizedRows,
}

/// A `k × n` f32 weight matrix in column panels.
#[derive(Debug)]
pub(crate) struct FloatMatrix {
    k: usize,
    n: usize,
    width: usize,
    /// `ceil(n / width)` panels of `k × width`, zero-padded past column `n`.
    panels: Vec<f32>,
}

impl FloatMatrix {
    /// Packs a row-major `k × n` matrix.
    pub(crate) fn new(weights: &[f32], k: usize, n: usize, width: usize) -> FloatMatrix {
        assert_eq!(weights.len(), k * n, "weights are not {k} x {n}");
        let n_panels = n.div_ceil(width);
        let mut panels = vec![0.0; n_panels * k * width];
        for (p, panel) in panels.chunks_exact_mut(k * width).enumerate() {
            let col = p * width;
            let cols = width.min(n - col);
            for (row, dst) in panel.chunks_exact_mut(width).enumerate() {
                dst[..cols].copy_from_slice(&weights[row * n + col..row * n + col + cols]);
            }
        }
        FloatMatrix { k, n, width, panels }
    }
}

/// The dispatcher and the tile shape that goes with its SIMD level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matmul {
    arch: Arch,
    /// Panel width: two SIMD vectors.
    width: usize,
    /// Rows per register tile.
    mr: usize,
    /// The integer kernel, when this CPU has one.
    #[cfg(target_arch = "x86_64")]
    quantized: Option<Level>,
}

impl Matmul {
    /// Detects the CPU's SIMD level once.
    pub(crate) fn new() -> Matmul {
        struct Lanes;
        impl WithSimd for Lanes {
            type Output = usize;
            #[inline(always)]
            fn with_simd<S: Simd>(self, _simd: S) -> usize {
                S::F32_LANES
            }
        }
        let arch = Arch::new();
        let lanes = arch.dispatch(Lanes);
        // x86 below AVX-512 has 16 vector registers; AVX-512 and aarch64 have 32.
        let many_registers = lanes >= 16 || cfg!(target_arch = "aarch64");
        let float = Matmul {
            arch,
            width: (2 * lanes).min(MAX_WIDTH),
            mr: if many_registers { MR_32_REGS } else { MR_16_REGS },
            #[cfg(target_arch = "x86_64")]
            quantized: None,
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(level) = Level::detect() {
            return Matmul { width: level.width(), mr: level.mr(), quantized: Some(level), ..float };
        }
        float
    }

    /// The same dispatcher without the integer kernel: exact f32 products.
    #[cfg(test)]
    pub(crate) fn float() -> Matmul {
        let m = Matmul::new();
        #[cfg(target_arch = "x86_64")]
        let m = Matmul { quantized: None, ..m };
        m
    }

    /// Packs a row-major `k × n` matrix for this dispatcher.
    pub(crate) fn pack(&self, weights: &[f32], k: usize, n: usize) -> PackedMatrix {
        #[cfg(target_arch = "x86_64")]
        if self.quantized.is_some() {
            return PackedMatrix::Quantized(QuantizedMatrix::new(weights, k, n, self.width));
        }
        PackedMatrix::Float(FloatMatrix::new(weights, k, n, self.width))
    }

    /// `out[r] = a[offsets[r]..offsets[r] + k] · b + bias` for every row `r`;
    /// `out` is dense, `offsets.len() × b.n`.
    pub(crate) fn product(
        &self,
        a: &[f32],
        offsets: &[usize],
        b: &PackedMatrix,
        bias: &[f32],
        out: &mut [f32],
        scratch: &mut ProductScratch,
    ) {
        let (m, (k, n)) = (offsets.len(), b.k_n());
        assert_eq!(out.len(), m * n, "output is not {m} x {n}");
        assert_eq!(bias.len(), n, "bias length");
        assert!(offsets.iter().all(|&o| o + k <= a.len()), "row past the end of a");
        match b {
            PackedMatrix::Float(b) => self.float_product(a, offsets, b, bias, out, &mut scratch.floats),
            #[cfg(target_arch = "x86_64")]
            PackedMatrix::Quantized(b) => {
                let level = self.quantized.expect("matrix packed for another SIMD level");
                level.product(a, offsets, b, bias, out, &mut scratch.quantized);
            }
        }
    }

    /// The f32 product; `scratch` receives the rows of `a` interleaved tile
    /// by tile (`k × rows`).
    fn float_product(
        &self,
        a: &[f32],
        offsets: &[usize],
        b: &FloatMatrix,
        bias: &[f32],
        out: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        let (m, k) = (offsets.len(), b.k);
        assert_eq!(b.width, self.width, "matrix packed for another SIMD level");
        scratch.clear();
        scratch.resize(m * k, 0.0);
        for (t, tile) in offsets.chunks(self.mr).enumerate() {
            let rows = tile.len();
            let block = &mut scratch[t * self.mr * k..t * self.mr * k + rows * k];
            for (r, &o) in tile.iter().enumerate() {
                for (kk, &v) in a[o..o + k].iter().enumerate() {
                    block[kk * rows + r] = v;
                }
            }
        }
        self.arch.dispatch(Product { a: scratch, m, mr: self.mr, b, bias, out });
    }
}

/// One `product` call, run inside the SIMD dispatch.
struct Product<'a> {
    /// Rows of `A`, tile by tile, each tile interleaved (`k × rows`).
    a: &'a [f32],
    m: usize,
    mr: usize,
    b: &'a FloatMatrix,
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Product<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Product { a, m, mr, b, bias, out } = self;
        let (k, n, width) = (b.k, b.n, b.width);
        if width != 2 * S::F32_LANES || k == 0 || mr > MR_32_REGS {
            return scalar_product(a, m, mr, b, bias, out);
        }
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for (p, panel) in b.panels.chunks_exact(k * width).enumerate() {
                let col = p * width;
                let cols = width.min(n - col);
                let slab = &panel[k0 * width..(k0 + kc) * width];
                let slab = S::as_simd_f32s(slab).0.as_chunks::<2>().0;
                let mut r0 = 0;
                while r0 < m {
                    let rows = (m - r0).min(mr);
                    let a = &a[r0 * k + k0 * rows..r0 * k + (k0 + kc) * rows];
                    let out = &mut out[r0 * n..(r0 + rows) * n];
                    let at = Tile { col, cols, n, first: (k0 == 0).then_some(bias) };
                    tile_for_rows!(rows, tile::<S>(simd, a, slab, out, at));
                    r0 += rows;
                }
            }
        }
    }
}

/// Where a tile's results go: columns `col..col + cols` of rows `n` wide.
#[derive(Clone, Copy)]
struct Tile<'a> {
    col: usize,
    cols: usize,
    n: usize,
    /// On the first depth slab the accumulators start from the bias; later
    /// slabs add to what the previous ones stored.
    first: Option<&'a [f32]>,
}

/// `R` rows × one panel × one depth slab, accumulating in registers.
#[inline(always)]
fn tile<S: Simd, const R: usize>(simd: S, a: &[f32], slab: &[[S::f32s; 2]], out: &mut [f32], at: Tile) {
    let width = 2 * S::F32_LANES;
    let mut buf = [0.0f32; MAX_WIDTH];
    let mut acc = [[simd.splat_f32s(0.0); 2]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        let src = match at.first {
            Some(bias) => &bias[at.col..at.col + at.cols],
            None => &out[r * at.n + at.col..r * at.n + at.col + at.cols],
        };
        buf[..at.cols].copy_from_slice(src);
        let v = S::as_simd_f32s(&buf[..width]).0;
        *acc = [v[0], v[1]];
    }
    for (av, bv) in a.as_chunks::<R>().0.iter().zip(slab) {
        for r in 0..R {
            let x = simd.splat_f32s(av[r]);
            acc[r][0] = simd.mul_add_f32s(x, bv[0], acc[r][0]);
            acc[r][1] = simd.mul_add_f32s(x, bv[1], acc[r][1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = &mut out[r * at.n + at.col..r * at.n + at.col + at.cols];
        if at.cols == width {
            let (head, _) = S::as_mut_simd_f32s(row);
            head[0] = acc[0];
            head[1] = acc[1];
        } else {
            let (head, _) = S::as_mut_simd_f32s(&mut buf[..width]);
            head[0] = acc[0];
            head[1] = acc[1];
            row.copy_from_slice(&buf[..at.cols]);
        }
    }
}

/// Fallback for a panel width that does not match the SIMD level (never with
/// matrices packed by the same [`Matmul`]); correct, not fast.
fn scalar_product(a: &[f32], m: usize, mr: usize, b: &FloatMatrix, bias: &[f32], out: &mut [f32]) {
    let (k, n, width) = (b.k, b.n, b.width);
    for (r, row) in out.chunks_exact_mut(n).enumerate().take(m) {
        let tile = r / mr;
        let rows = (m - tile * mr).min(mr);
        let a_tile = &a[tile * mr * k..tile * mr * k + rows * k];
        for (j, value) in row.iter_mut().enumerate() {
            let panel = &b.panels[(j / width) * k * width..];
            let mut sum = bias[j];
            for kk in 0..k {
                sum += a_tile[kk * rows + r % mr] * panel[kk * width + j % width];
            }
            *value = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], offsets: &[usize], w: &[f32], k: usize, n: usize, bias: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        for &o in offsets {
            for j in 0..n {
                let mut s = bias[j] as f64;
                for kk in 0..k {
                    s += a[o + kk] as f64 * w[kk * n + j] as f64;
                }
                out.push(s as f32);
            }
        }
        out
    }

    fn check(m: usize, k: usize, n: usize, width: usize) {
        let a: Vec<f32> = (0..(m + 3) * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
        // overlapping windows, as the convolutions use them
        let offsets: Vec<usize> = (0..m).map(|r| r * 3).collect();
        let matmul = Matmul { width, ..Matmul::float() };
        let packed = PackedMatrix::Float(FloatMatrix::new(&w, k, n, width));
        let mut out = vec![f32::NAN; m * n];
        matmul.product(&a, &offsets, &packed, &bias, &mut out, &mut ProductScratch::default());
        let want = naive(&a, &offsets, &w, k, n, &bias);
        for (i, (x, y)) in out.iter().zip(&want).enumerate() {
            assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "m={m} k={k} n={n} [{i}]: {x} vs {y}");
        }
    }

    #[test]
    fn matches_a_naive_product_for_ragged_shapes() {
        let width = Matmul::float().width;
        for (m, k, n) in [(1, 1, 1), (7, 13, 40), (6, 64, 32), (13, 5, 17), (20, 100, 64), (30, 600, 64)] {
            check(m, k, n, width);
        }
    }

    #[test]
    fn scalar_fallback_matches_too() {
        // A width that no SIMD level uses forces the fallback path.
        check(9, 11, 20, 3);
    }

    /// The AVX2 path (16 registers, 6-row tiles) on machines that would
    /// otherwise pick AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_tiles_match_a_naive_product() {
        let Some(v3) = pulp::x86::V3::try_new() else {
            return;
        };
        let (m, k, n) = (23, 300, 48);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
        let bias = vec![0.5; n];
        let offsets: Vec<usize> = (0..m).map(|r| r * k).collect();
        let b = FloatMatrix::new(&w, k, n, 16);
        let mut packed = vec![0.0; m * k];
        for (t, tile) in offsets.chunks(MR_16_REGS).enumerate() {
            let rows = tile.len();
            for (r, &o) in tile.iter().enumerate() {
                for kk in 0..k {
                    packed[t * MR_16_REGS * k + kk * rows + r] = a[o + kk];
                }
            }
        }
        let mut out = vec![0.0; m * n];
        let product = Product { a: &packed, m, mr: MR_16_REGS, b: &b, bias: &bias, out: &mut out };
        v3.vectorize(|| product.with_simd(v3));
        let want = naive(&a, &offsets, &w, k, n, &bias);
        for (x, y) in out.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
