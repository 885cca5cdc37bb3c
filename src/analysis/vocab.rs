//! The e-commerce vocabulary kefu ships: couriers, platform rules (七天无理由,
//! 运费险, 价保, 改价, 催付, 插旗), sizes, colours, materials and common product
//! words, so that a shop without any `dict.txt` or `synonyms.txt` is still
//! understood. The shop's files extend and override it (see [`merge`]).

use std::collections::HashMap;

use crate::kb::{parse_dict, parse_synonyms, DictWord, SynonymGroup};

const DICT: &str = include_str!("vocab/dict.txt");
const SYNONYMS: &str = include_str!("vocab/synonyms.txt");

/// The built-in dictionary words. The file is part of the binary and tested,
/// so a malformed line is a bug caught by `builtin_vocabulary_parses`.
pub fn dict() -> Vec<DictWord> {
    parse_dict(DICT, &mut |_, _| {})
}

/// The built-in synonym groups.
pub fn synonyms() -> Vec<SynonymGroup> {
    parse_synonyms(SYNONYMS, &mut |_, _| {})
}

/// The shop's vocabulary over the built-in one. Dictionary words: the shop's
/// frequency wins. Synonyms: a built-in group that shares a word with a
/// shop group adds its other words to the shop's group (whose canonical word
/// stays); a word is never in two groups.
pub fn merge(shop_dict: &[DictWord], shop_synonyms: &[SynonymGroup]) -> (Vec<DictWord>, Vec<SynonymGroup>) {
    let key = |w: &str| w.trim().to_lowercase();
    let mut dict: Vec<DictWord> = Vec::new();
    let shop_words: std::collections::HashSet<String> = shop_dict.iter().map(|w| key(&w.word)).collect();
    dict.extend(dict_builtin_minus(&shop_words));
    dict.extend(shop_dict.iter().cloned());

    let mut groups: Vec<SynonymGroup> = shop_synonyms.to_vec();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        for w in &g.0 {
            group_of.entry(key(w)).or_insert(i);
        }
    }
    for builtin in synonyms() {
        let target = builtin.0.iter().find_map(|w| group_of.get(&key(w)).copied());
        let fresh: Vec<String> = builtin.0.iter().filter(|w| !group_of.contains_key(&key(w))).cloned().collect();
        match target {
            Some(i) => {
                for w in fresh {
                    group_of.insert(key(&w), i);
                    groups[i].0.push(w);
                }
            }
            None if fresh.len() >= 2 => {
                let i = groups.len();
                for w in &fresh {
                    group_of.insert(key(w), i);
                }
                groups.push(SynonymGroup(fresh));
            }
            None => {}
        }
    }
    (dict, groups)
}

fn dict_builtin_minus(shop: &std::collections::HashSet<String>) -> Vec<DictWord> {
    dict().into_iter().filter(|w| !shop.contains(&w.word.to_lowercase())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_vocabulary_parses() {
        let mut errors = Vec::new();
        let d = parse_dict(DICT, &mut |line, e| errors.push(format!("dict.txt:{line}: {e}")));
        let s = parse_synonyms(SYNONYMS, &mut |line, e| errors.push(format!("synonyms.txt:{line}: {e}")));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(d.len() > 100 && s.len() > 30);
    }

    #[test]
    fn shop_groups_keep_their_canonical_word_and_gain_builtin_words() {
        let shop = vec![SynonymGroup(vec!["顺丰".into(), "SF".into()])];
        let (_, groups) = merge(&[], &shop);
        let sf = &groups[0].0;
        assert_eq!(sf[0], "顺丰");
        assert!(sf.contains(&"顺丰速运".to_string()));
        assert_eq!(sf.iter().filter(|w| w.eq_ignore_ascii_case("sf")).count(), 1);
        assert!(groups.iter().any(|g| g.0[0] == "运费险"));
    }
}
