//! Switches for the query-understanding techniques, so that each one's gain
//! can be measured by turning it off (README, "Buyer messages").
//!
//! Techniques that change what is indexed (`domain_vocab`, `mixed_script`)
//! are saved with the index in its analysis settings, and a search always
//! uses the options its index was built with: a query must be analysed the
//! way the indexed text was.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Which query-understanding techniques are on. All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryOptions {
    /// Split a chatty message into clauses, drop greetings and filler
    /// clauses, weight the clause that asks the question above the ones
    /// that give background, and turn attributes (42码, 顺丰, 昨天, 2件)
    /// into signals instead of search terms. Query side only.
    pub clauses: bool,
    /// Decode Latin-letter queries typed in pinyin (`fahuo`, `fa huo`,
    /// `fh`, `qtwly`) into the knowledge base's own words. Query side only;
    /// the pinyin table is built from the index's vocabulary when it opens.
    pub pinyin: bool,
    /// Correct homophone and near-homophone typos (发或 → 发货, 退宽 →
    /// 退款) and pinyin keyboard slips, only when the search is weak and
    /// only if the correction matches the knowledge base better. Query side.
    pub typos: bool,
    /// Fold the ways buyers write numbers (七天 = 7天, 两件 = 2件) on both
    /// sides; needs a rebuild when changed. Width, case and traditional
    /// characters are always folded (they always were).
    pub mixed_script: bool,
    /// Ship the built-in e-commerce dictionary and synonyms (couriers,
    /// platform rules, sizes, materials) under the shop's `kb/dict.txt` and
    /// `kb/synonyms.txt`, which extend and override them. Needs a rebuild.
    pub domain_vocab: bool,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions { clauses: true, pinyin: true, typos: true, mixed_script: true, domain_vocab: true }
    }
}

/// A technique name that [`QueryOptions::disabling`] does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown technique {0:?} (expected clauses, pinyin, typos, mixed_script, domain_vocab or all)")]
pub struct UnknownTechnique(pub String);

static INSTALLED: OnceLock<QueryOptions> = OnceLock::new();

impl QueryOptions {
    /// The default options with the comma-separated techniques turned off
    /// (`"pinyin,typos"`; `"all"` turns every one off), as `--disable` and
    /// `KEFU_DISABLE` give them.
    pub fn disabling(list: &str) -> Result<QueryOptions, UnknownTechnique> {
        let mut options = QueryOptions::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.replace('-', "_").as_str() {
                "clauses" => options.clauses = false,
                "pinyin" => options.pinyin = false,
                "typos" => options.typos = false,
                "mixed_script" => options.mixed_script = false,
                "domain_vocab" => options.domain_vocab = false,
                "all" => {
                    options = QueryOptions {
                        clauses: false,
                        pinyin: false,
                        typos: false,
                        mixed_script: false,
                        domain_vocab: false,
                    }
                }
                _ => return Err(UnknownTechnique(name.to_string())),
            }
        }
        Ok(options)
    }

    /// Makes `self` the options every index this process builds is built
    /// with. The binary calls it once at start-up from its flags (and, later,
    /// `kefu.toml`); builds started by a live reload deep inside the server
    /// see the same options without every caller passing them. Returns false
    /// if options were already installed (the first ones stay).
    pub fn install(self) -> bool {
        INSTALLED.set(self).is_ok()
    }

    /// The installed options, or the defaults.
    pub fn installed() -> QueryOptions {
        INSTALLED.get().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabling_turns_named_techniques_off() {
        let o = QueryOptions::disabling("pinyin, typos").unwrap();
        assert!(!o.pinyin && !o.typos && o.clauses && o.mixed_script && o.domain_vocab);
        assert_eq!(QueryOptions::disabling("").unwrap(), QueryOptions::default());
        assert!(QueryOptions::disabling("pinyn").is_err());
        assert!(!QueryOptions::disabling("all").unwrap().clauses);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let o: QueryOptions = serde_json::from_str(r#"{"pinyin": false}"#).unwrap();
        assert!(!o.pinyin && o.typos);
        assert!(serde_json::from_str::<QueryOptions>(r#"{"pinin": false}"#).is_err());
    }
}
