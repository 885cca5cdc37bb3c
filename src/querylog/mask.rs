//! Masks personal data in what buyers type before it is stored or traced.
//!
//! Buyers paste their phone number, order number or address into the chat
//! ("订单号4012345678901234567还没发货", "寄到文三路398号3栋501"). The query
//! log keeps the question, never the person: each piece of personal data is
//! replaced by a label such as `[手机号]`, which also keeps the masked
//! questions of different buyers identical, so they group in the gap report.
//!
//! Numbers are found as runs of digits (ASCII or full-width, with single
//! spaces or dashes between groups) and classified by length and shape:
//! a mobile number is 11 digits starting 1[3-9] (optionally +86), an ID card
//! is 17 digits and a check digit with a plausible birth date, a bank card is
//! 16–19 digits named as a card or passing the Luhn check, and any other run
//! of 9 or more digits is an order, tracking or account number. Short numbers
//! (42码, 2件, 7天, ¥199) are kept: they are what the question is about.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// The labels that replace personal data.
pub const PHONE: &str = "[手机号]";
pub const ID_CARD: &str = "[身份证号]";
pub const BANK_CARD: &str = "[银行卡号]";
pub const ORDER: &str = "[订单号]";
pub const TRACKING: &str = "[运单号]";
pub const EMAIL: &str = "[邮箱]";
pub const ADDRESS: &str = "[地址]";
pub const NUMBER: &str = "[号码]";

static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+\-]*[@＠][A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("email pattern")
});

/// A run of digits with single separators, optionally led by a courier's
/// letters (SF1234567890) or a `+`.
static DIGITS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:[A-Za-z]{1,4}|[+＋])?[0-9０-９](?:[ \-－]?[0-9０-９])*[Xx]?").expect("digit pattern")
});

/// A Chinese street address: optional province / city / district, then a
/// street, village or compound, then at least one house, building, unit or
/// room number. Both parts are required so that 2号色 or 杭州市 alone stay.
static ADDRESS_RE: LazyLock<Regex> = LazyLock::new(|| {
    let num = r"[0-9０-９一二三四五六七八九十百零〇]+";
    let unit = r"(?:号楼|号院|号|栋|幢|座|单元|层|楼|室|户|弄)";
    let pattern = format!(
        r"(?:\p{{Han}}{{2,6}}?(?:省|自治区|特别行政区))?(?:\p{{Han}}{{2,6}}?(?:市|州|盟))?(?:\p{{Han}}{{1,6}}?(?:区|县|旗|镇|乡|街道))?\p{{Han}}{{0,10}}?(?:路|街|大道|大街|巷|胡同|村|小区|花园|家园|公寓|大厦|广场|苑|园|里|区)[\s\-－]*(?:{num}[\s\-－]*{unit}[\s\-－]*)+(?:{num})?"
    );
    Regex::new(&pattern).expect("address pattern")
});

/// Words that lead into an address and are kept when an address match
/// starts with them ("寄到", "地址是"): the last one before the first
/// administrative unit ends the kept text.
const ADDRESS_LEAD_INS: [&str; 12] =
    ["地址是", "地址", "寄到", "发到", "送到", "改成", "改为", "改到", "住在", "在", "是", "到"];
/// Characters that end a place name in an address.
const ADDRESS_UNITS: [char; 11] = ['省', '市', '区', '县', '州', '路', '街', '村', '镇', '乡', '巷'];

/// Returns `text` with personal data replaced by labels such as `[手机号]`.
/// Borrowed when there was nothing to mask (the common case).
pub fn mask(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if text.contains(['@', '＠']) {
        if let Cow::Owned(s) = EMAIL_RE.replace_all(&out, EMAIL) {
            out = Cow::Owned(s);
        }
    }
    if out.chars().any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c)) {
        if let Some(s) = mask_numbers(&out) {
            out = Cow::Owned(s);
        }
        if let Some(s) = mask_addresses(&out) {
            out = Cow::Owned(s);
        }
    } else if out.chars().any(|c| "一二三四五六七八九十".contains(c)) {
        if let Some(s) = mask_addresses(&out) {
            out = Cow::Owned(s);
        }
    }
    out
}

fn mask_numbers(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in DIGITS_RE.find_iter(text) {
        let mut start = m.start();
        let mut raw = m.as_str();
        // Letters glued to a longer word (iPhone13…) are not a courier prefix.
        if text[..start].chars().next_back().is_some_and(|c| c.is_ascii_alphabetic()) {
            let skip = raw.len() - raw.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
            start += skip;
            raw = &raw[skip..];
        }
        let Some(label) = classify(raw, &text[..start]) else {
            continue;
        };
        out.push_str(&text[last..start]);
        out.push_str(label);
        last = m.end();
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Decides what a run of digits is, from its shape and the words before it.
fn classify(raw: &str, before: &str) -> Option<&'static str> {
    let letters = raw.chars().take_while(|c| c.is_ascii_alphabetic()).count();
    let mut digits = String::with_capacity(raw.len());
    let mut groups = vec![0usize];
    let mut check_x = false;
    for c in raw.chars().skip(letters) {
        match c {
            '0'..='9' => digits.push(c),
            '０'..='９' => digits.push(char::from(b'0' + (c as u32 - '０' as u32) as u8)),
            'X' | 'x' => check_x = true,
            _ => groups.push(0),
        }
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            *groups.last_mut().expect("one group") += 1;
        }
    }
    let n = digits.len();
    // Dates and times (2026-11-11 20:00) are what a question is about.
    if groups.len() >= 3
        && groups[0] == 4
        && (digits.starts_with("19") || digits.starts_with("20"))
        && groups[1..].iter().all(|&g| (1..=2).contains(&g))
    {
        return None;
    }
    if check_x {
        return (n == 17).then_some(ID_CARD).or((n >= 9).then_some(NUMBER));
    }
    let context: String = before.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    let has = |words: &[&str]| words.iter().any(|w| context.contains(w));
    // A real ID number has a valid check digit; one typed after 身份证 only
    // needs a plausible birth date.
    if n == 18 && has_birth_date(&digits) && (id_check_ok(&digits) || has(&["身份"])) {
        return Some(ID_CARD);
    }
    if letters > 0 && n >= 9 {
        return Some(TRACKING);
    }
    let national = if n == 13 { digits.strip_prefix("86").unwrap_or(&digits) } else { &digits };
    if national.len() == 11 && national.starts_with('1') && matches!(national.as_bytes()[1], b'3'..=b'9') {
        return Some(PHONE);
    }
    // Landlines: 0 + area code + 7–8 digits, written with a separator.
    if (10..=12).contains(&n) && digits.starts_with('0') && groups.len() > 1 {
        return Some(PHONE);
    }
    if n < 9 {
        return None;
    }
    if has(&["运单", "快递单", "物流单", "快递号"]) {
        return Some(TRACKING);
    }
    if has(&["订单", "单号"]) {
        return Some(ORDER);
    }
    if has(&["卡"]) && (15..=19).contains(&n) {
        return Some(BANK_CARD);
    }
    // Taobao and Tmall order numbers are 18–19 digits; other 16–19 digit
    // numbers that pass the Luhn check are card numbers.
    if (16..=17).contains(&n) && luhn(&digits) {
        return Some(BANK_CARD);
    }
    if n >= 10 {
        return Some(ORDER);
    }
    Some(NUMBER)
}

/// Whether digits 6–13 of an 18-digit number are a plausible birth date.
fn has_birth_date(digits: &str) -> bool {
    let num = |r: std::ops::Range<usize>| digits[r].parse::<u32>().unwrap_or(0);
    let year = num(6..10);
    let month = num(10..12);
    let day = num(12..14);
    (1900..=2030).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The ISO 7064 MOD 11-2 check digit of a Chinese ID card.
fn id_check_ok(digits: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = digits.as_bytes();
    let sum: u32 = WEIGHTS.iter().zip(b).map(|(w, d)| w * u32::from(d - b'0')).sum();
    let expected = CHECK[(sum % 11) as usize];
    b.get(17).is_some_and(|&last| last == expected)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn mask_addresses(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in ADDRESS_RE.find_iter(text) {
        let start = m.start() + lead_in_len(m.as_str());
        out.push_str(&text[last..start]);
        out.push_str(ADDRESS);
        last = m.end();
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Bytes at the start of an address match that are the buyer's own words
/// ("我家在", "你好我的地址是"): everything up to the last lead-in word
/// before the first administrative unit.
fn lead_in_len(found: &str) -> usize {
    let unit = found.find(ADDRESS_UNITS).unwrap_or(found.len());
    let head = &found[..unit];
    ADDRESS_LEAD_INS
        .iter()
        .filter_map(|lead| head.rfind(lead).map(|i| i + lead.len()))
        .max()
        // A place name must keep at least one character before its unit.
        .filter(|&end| end < unit)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_buyers_type() {
        let cases = [
            ("我手机13812345678能改地址吗", "我手机[手机号]能改地址吗"),
            ("电话 +86 138-1234-5678 联系我", "电话 [手机号] 联系我"),
            ("订单号4012345678901234567还没发货", "订单号[订单号]还没发货"),
            ("京东单号 251234567890 到哪了", "京东单号 [订单号] 到哪了"),
            ("身份证11010519491231002X要填吗", "身份证[身份证号]要填吗"),
            ("退款到卡号6222 0212 3456 7890 123可以吗", "退款到卡号[银行卡号]可以吗"),
            ("发票发到abc.de@example.com", "发票发到[邮箱]"),
            ("顺丰SF1234567890123查不到", "顺丰[运单号]查不到"),
            ("寄到浙江省杭州市西湖区文三路398号3栋2单元501室", "寄到[地址]"),
            ("42码的靴子7天能到吗，买2件", "42码的靴子7天能到吗，买2件"),
            ("在吗", "在吗"),
            ("你好我家在杭州市西湖区文三路398号，能发顺丰吗", "你好我家在[地址]，能发顺丰吗"),
            ("收货地址北京市朝阳区望京西园三区312号楼改一下", "收货地址[地址]改一下"),
            ("座机0571-88886666", "座机[手机号]"),
            ("双十一2026-11-11 20:00付款的", "双十一2026-11-11 20:00付款的"),
            ("iPhone15能用花呗吗", "iPhone15能用花呗吗"),
            ("买了2号色，能换3号吗", "买了2号色，能换3号吗"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask(input), expected, "input {input}");
        }
    }

    #[test]
    fn full_width_digits_are_masked_too() {
        assert_eq!(mask("手机１３９１２３４５６７８"), "手机[手机号]");
    }

    #[test]
    fn nothing_to_mask_borrows() {
        assert!(matches!(mask("靴子偏大吗"), Cow::Borrowed(_)));
    }
}
