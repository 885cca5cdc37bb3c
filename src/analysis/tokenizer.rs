//! The analysis as tantivy tokenizers. kefu builds queries from
//! [`Analyzer::analyze`] directly and indexes pre-tokenized text (one
//! analysis per text instead of one per field), but tantivy needs a tokenizer
//! registered for every text field, and any text it tokenizes itself must go
//! through the same pipeline.

use std::sync::Arc;

use tantivy::tokenizer::{PreTokenizedString, Token as TantivyToken, TokenStream, Tokenizer};

use super::{Analysis, Analyzer, Stream};

/// A tantivy tokenizer that emits one of the analysis streams.
#[derive(Clone)]
pub struct StreamTokenizer {
    analyzer: Arc<Analyzer>,
    stream: Stream,
}

impl StreamTokenizer {
    pub fn new(analyzer: Arc<Analyzer>, stream: Stream) -> Self {
        StreamTokenizer { analyzer, stream }
    }
}

/// Tokens of one text, handed out in order.
pub struct VecTokenStream {
    tokens: Vec<TantivyToken>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &TantivyToken {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut TantivyToken {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for StreamTokenizer {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let analysis = self.analyzer.analyze(text);
        VecTokenStream { tokens: tantivy_tokens(&analysis, self.stream), next: 0 }
    }
}

/// Converts one stream of an analysis to tantivy tokens.
pub fn tantivy_tokens(analysis: &Analysis, stream: Stream) -> Vec<TantivyToken> {
    analysis
        .stream(stream)
        .iter()
        .enumerate()
        .map(|(position, t)| TantivyToken {
            offset_from: t.start,
            offset_to: t.end,
            position,
            text: t.term.clone(),
            position_length: 1,
        })
        .collect()
}

/// Pre-tokenized field value for one stream of an analysis of `text`.
pub fn pre_tokenized(text: &str, analysis: &Analysis, stream: Stream) -> PreTokenizedString {
    PreTokenizedString { text: text.to_string(), tokens: tantivy_tokens(analysis, stream) }
}
