//! Long chatty messages: 「亲在吗，我昨天拍的那双靴子42码的今天能发顺丰不，急用」.
//!
//! The message is split into clauses (punctuation, emoji, spaces between
//! Chinese text, connectors such as 还有/另外, and before 今天/现在 after a
//! long stretch), each clause gets a role, and attributes are lifted out:
//! - **greeting / chat** clauses (在吗, 急用, 谢谢, 麻烦快点) are dropped;
//! - **question** clauses (吗, 怎么, 能不能, 多久, a trailing 不/没) weigh
//!   fully, **background** clauses (我昨天拍的那双靴子) less, so that the
//!   buried question wins;
//! - **attributes** (42码, 黑色, 顺丰, 昨天, 2件, ¥59, SKU and order
//!   numbers) are reported as signals; numbers and dates leave the search
//!   text (they say which order, not what the question is), while words
//!   that also carry meaning (顺丰, 黑色, 码) stay.
//!
//! It works on normalised text (simplified, half-width, lower case).

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What a clause does in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Asks something: searched at full weight.
    Question,
    /// Says something about the order or product: searched at lower weight.
    Background,
    /// Greeting, thanks, urgency: not searched.
    Chat,
}

/// One clause of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clause {
    /// The clause with attributes that are not search terms blanked out.
    pub text: String,
    pub role: Role,
}

/// Kinds of attribute a buyer mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    Size,
    Colour,
    Courier,
    Date,
    Quantity,
    Money,
    /// A product code (SKU-1001) or a long order number.
    Code,
}

/// An attribute found in the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub kind: AttributeKind,
    pub text: String,
}

/// A message split for search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub clauses: Vec<Clause>,
    pub attributes: Vec<Attribute>,
}

/// Clauses that are only chat (after removing punctuation).
const CHAT: &[&str] = &[
    "亲",
    "亲亲",
    "在吗",
    "在么",
    "在嘛",
    "在不在",
    "在不",
    "你好",
    "您好",
    "老板",
    "客服",
    "掌柜",
    "哈喽",
    "hello",
    "hi",
    "急用",
    "急",
    "很急",
    "着急",
    "好急",
    "急急急",
    "挺急的",
    "在线等",
    "谢谢",
    "谢谢亲",
    "谢谢了",
    "多谢",
    "麻烦了",
    "麻烦快点",
    "快点",
    "快点回复",
    "尽快回复",
    "回复一下",
    "好的",
    "嗯嗯",
    "嗯",
    "收到",
    "好吧",
    "行",
    "ok",
    "哈哈",
    "哈哈哈",
    "在线吗",
    "有人吗",
    "有人在吗",
    "人呢",
    "急需",
    "等你回复",
    "麻烦看下",
    "麻烦看一下",
];

/// Words that make a clause a question or a request.
const ASKING: &[&str] = &[
    "吗",
    "么",
    "嘛",
    "怎",
    "咋",
    "如何",
    "什么",
    "啥",
    "哪",
    "几",
    "多少",
    "多久",
    "多长",
    "能不能",
    "可不可以",
    "会不会",
    "有没有",
    "是不是",
    "要不要",
    "行不行",
    "好不好",
    "能否",
    "是否",
    "可否",
    "为什么",
    "为啥",
    "请问",
    "想问",
    "问下",
    "想知道",
    "能",
    "可以",
    "帮我",
    "给我",
    "帮忙",
    "求",
    "?",
    "？",
];

/// Question words and stock phrases that ask without saying about what.
const GENERIC: &[&str] = &[
    "怎么回事",
    "怎么办",
    "怎么处理",
    "怎么弄",
    "怎么说",
    "咋办",
    "咋回事",
    "是不是",
    "可以吗",
    "行吗",
    "能吗",
    "好吗",
    "对吗",
    "我想确认下",
    "确认下",
    "吗",
    "么",
    "嘛",
    "呢",
    "啊",
    "吧",
    "呀",
    "亲",
    "你好",
    "您好",
    "我",
    "你们",
    "了",
    "的",
    "?",
    "？",
];

/// Whether a question clause says what it is about (怎么回事 alone does
/// not: the content is in the clauses around it).
pub fn has_content(clause: &str) -> bool {
    let mut rest: String = clause.chars().filter(|c| c.is_alphanumeric()).collect();
    for g in GENERIC {
        rest = rest.replace(g, "");
    }
    rest.chars().count() >= 3
}

/// Connectors that start a new clause.
const CONNECTORS: &[&str] = &["还有", "另外", "顺便问", "然后", "但是", "不过", "而且", "对了"];
/// Time words that start the asking part of a long clause (…的今天能发吗).
const TURNS: &[&str] = &["今天", "明天", "现在", "最快", "什么时候", "多久", "能不能", "可以", "怎么"];

struct Patterns {
    attributes: Vec<(AttributeKind, Regex, bool)>,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // (kind, pattern, whether the match leaves the search text);
        // sizes keep their unit (码) and lose the number.
        let table: &[(AttributeKind, &str, bool)] = &[
            (AttributeKind::Code, r"sku[-_ ]?\d+|\d{10,}", true),
            (AttributeKind::Money, r"[¥$]\s*\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:元|块钱|块)", true),
            (AttributeKind::Size, r"\d{2,3}(?:\.5)?\s*(?:码|号|cm|厘米)|\b(?:xs|s|m|l|xl|xxl|xxxl|[2-4]xl)\s*码", false),
            (
                AttributeKind::Date,
                r"大后天|前天|昨天|今天|明天|后天|上周|这周|下周|(?:周|星期|礼拜)[1-7一二三四五六日天]|\d{1,2}月\d{1,2}[号日]?|\d{1,2}[号日]",
                true,
            ),
            (AttributeKind::Quantity, r"\d+\s*(?:件|个|双|瓶|套|盒|单|支|条|包)", false),
            (AttributeKind::Courier, r"顺丰|中通|圆通|申通|韵达|极兔|邮政|ems|德邦|京东快递|京东物流", false),
            (AttributeKind::Colour, r"(?:黑|白|深棕|棕|驼|灰|藏青|卡其|红|蓝|绿|米白|咖啡|酒红|米)色", false),
        ];
        let attributes = table
            .iter()
            .filter_map(|&(kind, pattern, remove)| Regex::new(pattern).ok().map(|r| (kind, r, remove)))
            .collect();
        Patterns { attributes }
    })
}

fn is_break(c: char) -> bool {
    !(c.is_alphanumeric() || c == ' ' || c == '-' || c == '_' || c == '.' || c == '¥' || c == '$')
}

/// Splits normalised `text` into raw clause strings.
fn raw_clauses(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let space_between_chinese = c == ' '
            && chars[..i].iter().rev().find(|c| **c != ' ').is_some_and(|c| !c.is_ascii())
            && chars[i + 1..].iter().find(|c| **c != ' ').is_some_and(|c| !c.is_ascii());
        let full_stop = c == '.' && !(i > 0 && chars[i - 1].is_ascii_digit());
        if is_break(c) || space_between_chinese || full_stop {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    let mut out = Vec::new();
    for part in parts {
        let mut rest = part.trim().to_string();
        // Split before connectors and, in a long clause, before the turn to the question.
        loop {
            let cut = CONNECTORS
                .iter()
                .filter_map(|w| rest.find(w).filter(|&at| at > 0))
                .chain(TURNS.iter().filter_map(|w| rest.find(w).filter(|&at| rest[..at].chars().count() >= 6)))
                .min();
            match cut {
                Some(at) => {
                    out.push(rest[..at].trim().to_string());
                    rest = rest[at..].trim().to_string();
                }
                None => break,
            }
        }
        out.push(rest);
    }
    out.retain(|c| !c.is_empty());
    out
}

fn role(clause: &str) -> Role {
    let bare: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
    let bare = bare.trim_start_matches(['亲', '哎', '诶', '嗯']);
    if bare.is_empty() || CHAT.contains(&bare) {
        return Role::Chat;
    }
    let trailing_negation = ["不", "没", "没有", "不了"].iter().any(|t| bare.ends_with(t));
    if trailing_negation || ASKING.iter().any(|w| bare.contains(w)) {
        Role::Question
    } else {
        Role::Background
    }
}

/// Splits a normalised message into clauses and attributes.
pub fn split(text: &str) -> Split {
    let mut out = Split::default();
    for raw in raw_clauses(text) {
        let mut searchable = raw.clone();
        for (kind, regex, remove) in &patterns().attributes {
            for m in regex.find_iter(&raw) {
                out.attributes.push(Attribute { kind: *kind, text: m.as_str().to_string() });
            }
            if *remove {
                searchable = regex.replace_all(&searchable, " ").into_owned();
            } else if *kind == AttributeKind::Size || *kind == AttributeKind::Quantity {
                // Keep the unit (码, 件), drop the number.
                searchable = regex
                    .replace_all(&searchable, |c: &regex::Captures<'_>| {
                        c[0].trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == '.' || ch == ' ').to_string()
                    })
                    .into_owned();
            }
        }
        let role = role(&raw);
        out.clauses.push(Clause { text: searchable, role });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(s: &Split) -> Vec<(&str, Role)> {
        s.clauses.iter().map(|c| (c.text.as_str(), c.role)).collect()
    }

    #[test]
    fn the_buried_question_is_found() {
        let s = split("亲在吗,我昨天拍的那双靴子42码的今天能发顺丰不,急用");
        assert_eq!(
            roles(&s),
            vec![
                ("亲在吗", Role::Chat),
                ("我 拍的那双靴子码的", Role::Background),
                (" 能发顺丰不", Role::Question),
                ("急用", Role::Chat)
            ]
        );
        let kinds: Vec<AttributeKind> = s.attributes.iter().map(|a| a.kind).collect();
        assert!(kinds.contains(&AttributeKind::Size) && kinds.contains(&AttributeKind::Courier));
        assert!(kinds.contains(&AttributeKind::Date));
    }

    #[test]
    fn a_plain_question_is_one_clause() {
        let s = split("运费险怎么理赔");
        assert_eq!(roles(&s), vec![("运费险怎么理赔", Role::Question)]);
    }

    #[test]
    fn latin_words_stay_together() {
        let s = split("fa huo");
        assert_eq!(s.clauses.len(), 1);
    }
}
