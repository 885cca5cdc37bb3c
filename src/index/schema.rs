//! The tantivy schema and tokenizer registration.
//!
//! Each entry becomes several documents: one per phrasing (标准问 and every
//! 相似问), so that the best phrasing's score counts rather than a blend of
//! all of them, and one "body" document for title, tags and answer. All carry
//! the entry's ordinal (a fast field) and the filter fields.

use std::sync::Arc;

use tantivy::schema::{Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STRING};
use tantivy::Index;

use crate::analysis::tokenizer::StreamTokenizer;
use crate::analysis::{Analyzer, Stream};

/// Value of the product and platform fields on entries that apply to all.
pub const ANY: &str = "*";

const WORDS: &str = "kefu_words";
const BIGRAMS: &str = "kefu_bigrams";
const CHARS: &str = "kefu_chars";

/// Handles of every field, resolved once per opened index.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Ordinal of the entry in the generation's entry list (fast field).
    pub ord: Field,
    /// Which phrasing of the entry a phrasing document holds (0 = 标准问).
    pub phrasing: Field,
    pub q_words: Field,
    pub q_bigrams: Field,
    pub q_chars: Field,
    /// Title and tags (body documents).
    pub t_words: Field,
    /// Answer text (body documents).
    pub a_words: Field,
    pub product: Field,
    pub platform: Field,
    pub audience: Field,
    /// Start of the entry's validity window, ms since the epoch (`i64::MIN`: always).
    pub valid_from: Field,
    /// End of the window, exclusive (`i64::MAX`: never ends).
    pub valid_to: Field,
}

fn text_field(schema: &mut tantivy::schema::SchemaBuilder, name: &str, tokenizer: &str) -> Field {
    // Frequencies matter for BM25; positions do not (no phrase queries).
    let indexing = TextFieldIndexing::default().set_tokenizer(tokenizer).set_index_option(IndexRecordOption::WithFreqs);
    schema.add_text_field(name, TextOptions::default().set_indexing_options(indexing))
}

/// The schema every kefu index has.
pub fn build_schema() -> Schema {
    let mut builder = Schema::builder();
    let fast = NumericOptions::default().set_fast();
    builder.add_u64_field("ord", fast.clone());
    builder.add_u64_field("phrasing", fast);
    text_field(&mut builder, "q_words", WORDS);
    text_field(&mut builder, "q_bigrams", BIGRAMS);
    text_field(&mut builder, "q_chars", CHARS);
    text_field(&mut builder, "t_words", WORDS);
    text_field(&mut builder, "a_words", WORDS);
    builder.add_text_field("product", STRING);
    builder.add_text_field("platform", STRING);
    builder.add_text_field("audience", STRING);
    // Windows are filtered at search time against the clock, so an entry
    // appears and disappears at its time without a rebuild.
    let window = NumericOptions::default().set_indexed().set_fast();
    builder.add_i64_field("valid_from", window.clone());
    builder.add_i64_field("valid_to", window);
    builder.build()
}

impl Fields {
    /// Resolves the fields of `schema`; fails on an index of another layout.
    pub fn resolve(schema: &Schema) -> tantivy::Result<Fields> {
        let f = |name: &str| schema.get_field(name);
        Ok(Fields {
            ord: f("ord")?,
            phrasing: f("phrasing")?,
            q_words: f("q_words")?,
            q_bigrams: f("q_bigrams")?,
            q_chars: f("q_chars")?,
            t_words: f("t_words")?,
            a_words: f("a_words")?,
            product: f("product")?,
            platform: f("platform")?,
            audience: f("audience")?,
            valid_from: f("valid_from")?,
            valid_to: f("valid_to")?,
        })
    }
}

/// Registers kefu's tokenizers on `index`. tantivy does not persist
/// tokenizers, so this runs on every create and open.
pub fn register_tokenizers(index: &Index, analyzer: &Arc<Analyzer>) {
    let manager = index.tokenizers();
    manager.register(WORDS, StreamTokenizer::new(analyzer.clone(), Stream::Words));
    manager.register(BIGRAMS, StreamTokenizer::new(analyzer.clone(), Stream::Bigrams));
    manager.register(CHARS, StreamTokenizer::new(analyzer.clone(), Stream::Chars));
}
