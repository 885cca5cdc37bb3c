//! The forward index: for every phrasing, the terms it was indexed with and
//! how often, so that a candidate phrasing is scored by reading its own
//! twenty-odd terms instead of seeking each of the query's thirty to sixty
//! posting lists to it (see `search::collect`).
//!
//! Written at build time, next to the tantivy files, from the very analysis
//! that was indexed, so its term frequencies are tantivy's.
//!
//! ```text
//! "KEFUFWD1"
//! u32 vocabulary size, then per term: u8 stream, u32 byte length, UTF-8
//! u32 entries, then u32 × (entries + 1): first row of each entry
//! u32 rows,    then u32 × (rows + 1):    first term of each row
//! u32 terms,   then u32 × terms: term id << 8 | frequency (at most 255)
//! ```
//! A row is one phrasing; row `entry_rows[ord] + phrasing`. All integers
//! are little-endian. Id and frequency share a word so that scoring a
//! candidate reads one run of memory (ids stay below 2^24: sixteen million
//! distinct terms, far beyond any knowledge base).

use std::collections::HashMap;
use std::path::Path;

use crate::analysis::{Analysis, Stream};

use super::IndexError;

const MAGIC: &[u8; 8] = b"KEFUFWD1";

/// The streams a phrasing is indexed with, in the order of their stream tag.
pub(crate) const STREAMS: [Stream; 3] = [Stream::Words, Stream::Bigrams, Stream::Chars];

pub(crate) fn stream_tag(stream: Stream) -> u8 {
    match stream {
        Stream::Words => 0,
        Stream::Bigrams => 1,
        Stream::Chars => 2,
    }
}

/// Collects rows while a generation is built.
#[derive(Debug, Default)]
pub(crate) struct ForwardBuilder {
    vocab: [HashMap<String, u32>; 3],
    next_id: u32,
    entry_rows: Vec<u32>,
    row_terms: Vec<u32>,
    terms: Vec<u32>,
}

/// Most distinct terms a forward index can number.
pub(crate) const MAX_TERMS: u32 = 1 << 24;

impl ForwardBuilder {
    /// Adds the next entry's phrasings, in phrasing order.
    pub fn add_entry(&mut self, phrasings: &[Analysis]) {
        self.entry_rows.push(self.row_terms.len() as u32);
        for analysis in phrasings {
            self.row_terms.push(self.terms.len() as u32);
            for stream in STREAMS {
                let tag = usize::from(stream_tag(stream));
                let mut counts: Vec<(u32, u32)> = Vec::new();
                for token in analysis.stream(stream) {
                    let id = match self.vocab[tag].get(&token.term) {
                        Some(&id) => id,
                        None => {
                            let id = self.next_id;
                            self.next_id += 1;
                            self.vocab[tag].insert(token.term.clone(), id);
                            id
                        }
                    };
                    match counts.iter_mut().find(|(t, _)| *t == id) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((id, 1)),
                    }
                }
                for (id, n) in counts {
                    // BM25 saturates long before 255 repetitions.
                    self.terms.push(id << 8 | n.min(255));
                }
            }
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), IndexError> {
        if self.next_id >= MAX_TERMS {
            let reason = format!("{} distinct terms; the forward index numbers at most {MAX_TERMS}", self.next_id);
            return Err(IndexError::Unusable { path: path.to_path_buf(), reason });
        }
        let mut out = Vec::with_capacity(16 + self.terms.len() * 5 + self.row_terms.len() * 4);
        out.extend_from_slice(MAGIC);
        let mut vocab: Vec<(u32, u8, &str)> = Vec::new();
        for (tag, map) in self.vocab.iter().enumerate() {
            vocab.extend(map.iter().map(|(term, &id)| (id, tag as u8, term.as_str())));
        }
        vocab.sort_unstable();
        put_u32(&mut out, vocab.len());
        for (_, tag, term) in vocab {
            out.push(tag);
            put_u32(&mut out, term.len());
            out.extend_from_slice(term.as_bytes());
        }
        put_u32(&mut out, self.entry_rows.len());
        for &row in self.entry_rows.iter().chain(std::iter::once(&(self.row_terms.len() as u32))) {
            put_u32(&mut out, row as usize);
        }
        put_u32(&mut out, self.row_terms.len());
        for &first in self.row_terms.iter().chain(std::iter::once(&(self.terms.len() as u32))) {
            put_u32(&mut out, first as usize);
        }
        put_u32(&mut out, self.terms.len());
        for &packed in &self.terms {
            put_u32(&mut out, packed as usize);
        }
        std::fs::write(path, out).map_err(super::io_err(path))
    }
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_le_bytes());
}

/// A loaded forward index.
#[derive(Debug, Default)]
pub(crate) struct Forward {
    /// Term → id, per stream (indexed by stream tag).
    vocab: [HashMap<String, u32>; 3],
    /// Stream tag of each term id.
    streams: Vec<u8>,
    entry_rows: Vec<u32>,
    row_terms: Vec<u32>,
    /// Term id << 8 | frequency.
    terms: Vec<u32>,
}

impl Forward {
    pub fn read(path: &Path) -> Result<Forward, IndexError> {
        let bytes = std::fs::read(path).map_err(super::io_err(path))?;
        let bad =
            |what: &str| IndexError::Unusable { path: path.to_path_buf(), reason: format!("forward index: {what}") };
        let mut r = Reader { bytes: &bytes, at: 0 };
        if r.take(8).ok_or_else(|| bad("truncated"))? != MAGIC {
            return Err(bad("not a kefu forward index"));
        }
        let mut vocab: [HashMap<String, u32>; 3] = Default::default();
        let size = r.u32().ok_or_else(|| bad("truncated vocabulary"))?;
        let mut streams = Vec::with_capacity(size as usize);
        for id in 0..size {
            let tag = r.take(1).ok_or_else(|| bad("truncated vocabulary"))?[0];
            streams.push(tag);
            let len = r.u32().ok_or_else(|| bad("truncated vocabulary"))? as usize;
            let text = r.take(len).ok_or_else(|| bad("truncated vocabulary"))?;
            let term = std::str::from_utf8(text).map_err(|_| bad("term is not UTF-8"))?;
            let map = vocab.get_mut(usize::from(tag)).ok_or_else(|| bad("unknown stream"))?;
            map.insert(term.to_string(), id);
        }
        let entry_rows = r.u32s(1).ok_or_else(|| bad("truncated entries"))?;
        let row_terms = r.u32s(1).ok_or_else(|| bad("truncated rows"))?;
        let terms = r.u32s(0).ok_or_else(|| bad("truncated terms"))?;
        let rows_ok = entry_rows.windows(2).all(|w| w[0] <= w[1])
            && entry_rows.last().is_some_and(|&last| last as usize + 1 == row_terms.len())
            && row_terms.windows(2).all(|w| w[0] <= w[1])
            && row_terms.last().is_some_and(|&last| last as usize == terms.len());
        if !rows_ok || r.at != bytes.len() {
            return Err(bad("inconsistent offsets"));
        }
        Ok(Forward { vocab, streams, entry_rows, row_terms, terms })
    }

    /// The id of `term` in `stream`, if any phrasing has it.
    pub fn term_id(&self, stream: Stream, term: &str) -> Option<u32> {
        self.vocab[usize::from(stream_tag(stream))].get(term).copied()
    }

    /// Every word (words stream) of the indexed phrasings with the number of
    /// phrasings that have it: the vocabulary a pinyin lexicon decodes into.
    /// In the order of the words' ids, so that a lexicon built from it, and
    /// the choice among equally likely words, is the same on every run.
    pub fn word_phrasings(&self) -> Vec<(&str, u32)> {
        let mut counts = vec![0u32; self.streams.len()];
        for packed in &self.terms {
            if let Some(n) = counts.get_mut((packed >> 8) as usize) {
                *n += 1;
            }
        }
        let mut words: Vec<(u32, &str)> =
            self.vocab[usize::from(stream_tag(Stream::Words))].iter().map(|(word, &id)| (id, word.as_str())).collect();
        words.sort_unstable();
        words.into_iter().map(|(id, word)| (word, counts.get(id as usize).copied().unwrap_or(0))).collect()
    }

    /// Where the terms of phrasing `phrasing` of entry `ord` are: a start
    /// and a length for [`Forward::terms`].
    pub fn row(&self, ord: u32, phrasing: u32) -> Option<(u32, u32)> {
        let first = *self.entry_rows.get(ord as usize)?;
        let end = *self.entry_rows.get(ord as usize + 1)?;
        let row = first.checked_add(phrasing).filter(|&r| r < end)? as usize;
        let (start, stop) = (self.row_terms[row], self.row_terms[row + 1]);
        Some((start, stop - start))
    }

    /// How many of the row's terms (see [`Forward::terms`]) are in each
    /// stream, by stream tag. `None` unless the row holds its words, then
    /// its bigrams, then its characters, as `ForwardBuilder` writes them and
    /// as scoring relies on.
    pub fn stream_lengths(&self, start: u32, len: u32) -> Option<[usize; 3]> {
        let mut lengths = [0; 3];
        let mut last = 0;
        for packed in self.terms(start, len) {
            let tag = usize::from(*self.streams.get((packed >> 8) as usize)?);
            if tag < last || tag >= 3 {
                return None;
            }
            lengths[tag] += 1;
            last = tag;
        }
        Some(lengths)
    }

    /// `len` packed terms from `start`: `id << 8 | frequency`.
    #[inline]
    pub fn terms(&self, start: u32, len: u32) -> &[u32] {
        self.terms.get(start as usize..(start as usize + len as usize)).unwrap_or(&[])
    }
}

/// Reads the little-endian binary files of a generation.
pub(super) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count, then `count + extra` values.
    pub fn u32s(&mut self, extra: usize) -> Option<Vec<u32>> {
        let count = (self.u32()? as usize).checked_add(extra)?;
        let raw = self.take(count.checked_mul(4)?)?;
        Some(raw.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisConfig, Analyzer};

    #[test]
    fn rows_round_trip_with_their_term_frequencies() {
        let analyzer = Analyzer::new(&AnalysisConfig::default()).unwrap();
        let mut builder = ForwardBuilder::default();
        builder.add_entry(&[analyzer.analyze("退款退款多久到账"), analyzer.analyze("怎么退货")]);
        builder.add_entry(&[analyzer.analyze("发什么快递")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forward.bin");
        builder.write(&path).unwrap();
        let forward = Forward::read(&path).unwrap();

        let terms = |ord, phrasing| {
            let (start, len) = forward.row(ord, phrasing).unwrap();
            forward.terms(start, len).iter().map(|&t| (t >> 8, t & 0xff)).collect::<Vec<_>>()
        };
        let tui = forward.term_id(Stream::Chars, "退").unwrap();
        assert!(terms(0, 0).contains(&(tui, 2)), "退 appears twice in the first phrasing");
        assert!(terms(0, 1).contains(&(tui, 1)));
        assert!(forward.row(0, 2).is_none(), "entry 0 has two phrasings");
        assert!(terms(1, 0).contains(&(forward.term_id(Stream::Chars, "递").unwrap(), 1)));
        assert!(forward.row(2, 0).is_none());
        assert_eq!(forward.term_id(Stream::Chars, "猫"), None);
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let mut builder = ForwardBuilder::default();
        let analyzer = Analyzer::new(&AnalysisConfig::default()).unwrap();
        builder.add_entry(&[analyzer.analyze("退款多久到账")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forward.bin");
        builder.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(Forward::read(&path), Err(IndexError::Unusable { .. })));
        std::fs::write(&path, b"not a forward index").unwrap();
        assert!(matches!(Forward::read(&path), Err(IndexError::Unusable { .. })));
    }
}
