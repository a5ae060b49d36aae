//! Identifiers of R2: organization code (GB 11714), unified social credit code
//! (GB 32100) and the Shanghai registration code of the period.

/// Full-width to half-width, stray spaces removed, letters upper-cased. Real
/// registers carry all of these; they are normalised, never rejected.
pub fn normalize_code(s: &str) -> String {
    // Most codes are already plain: copy them as they are.
    if s.bytes()
        .all(|b| b.is_ascii_graphic() && !b.is_ascii_lowercase())
    {
        return s.to_string();
    }
    s.chars()
        .filter_map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{3000}' => ' ',
                _ => c,
            };
            (!c.is_whitespace()).then(|| c.to_ascii_uppercase())
        })
        .collect()
}

/// Trim and fold full-width spaces in free text (names, addresses).
pub fn normalize_text(s: &str) -> String {
    if s.contains('\u{3000}') {
        s.replace('\u{3000}', " ").trim().to_string()
    } else {
        s.trim().to_string()
    }
}

fn alnum_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'A'..=b'Z' => Some((c - b'A') as u32 + 10),
        _ => None,
    }
}

/// Check an organization code, with or without its hyphen ("XXXXXXXX-X").
pub fn org_code_valid(code: &str) -> bool {
    // "XXXXXXXXX" or "XXXXXXXX-X": a hyphen, if any, stands before the check character.
    let c: Vec<u8> = match code.find('-') {
        None => code.bytes().collect(),
        Some(8) if code.len() == 10 => code.bytes().filter(|&b| b != b'-').collect(),
        Some(_) => return false,
    };
    if c.len() != 9 {
        return false;
    }
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let mut sum = 0;
    for (i, &b) in c[..8].iter().enumerate() {
        match alnum_value(b) {
            Some(v) => sum += v * W[i],
            None => return false,
        }
    }
    let check = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        n => b'0' + n as u8,
    };
    c[8] == check
}

const CREDIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Check a unified social credit code: alphabet, check character and the
/// embedded organization code (characters 9-17).
pub fn credit_code_valid(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 18 {
        return false;
    }
    let mut vals = [0u32; 18];
    for (i, ch) in b.iter().enumerate() {
        match CREDIT_ALPHABET.iter().position(|a| a == ch) {
            Some(v) => vals[i] = v as u32,
            None => return false,
        }
    }
    let mut sum = 0;
    let mut w = 1u32;
    for v in &vals[..17] {
        sum += v * w;
        w = w * 3 % 31;
    }
    let check = (31 - sum % 31) % 31;
    check == vals[17] && org_code_valid(&code[8..17])
}

/// The organization code embedded in a credit code, written "XXXXXXXX-X".
pub fn org_code_of_credit(code: &str) -> Option<String> {
    (code.len() == 18 && code.is_ascii()).then(|| format!("{}-{}", &code[8..16], &code[16..17]))
}

/// Canonical "XXXXXXXX-X" form of an organization code.
pub fn canonical_org_code(code: &str) -> String {
    let c: String = code.chars().filter(|&c| c != '-').collect();
    if c.len() == 9 && c.is_ascii() {
        format!("{}-{}", &c[..8], &c[8..])
    } else {
        code.to_string()
    }
}

/// Shanghai division codes of the period, old ones included (卢湾, 闸北, 南汇, 南市,
/// 崇明县) and the city bureau itself (310000).
pub const SHANGHAI_DIVISIONS: &[(&str, &str)] = &[
    ("310000", "上海市"),
    ("310101", "黄浦区"),
    ("310102", "南市区"),
    ("310103", "卢湾区"),
    ("310104", "徐汇区"),
    ("310105", "长宁区"),
    ("310106", "静安区"),
    ("310107", "普陀区"),
    ("310108", "闸北区"),
    ("310109", "虹口区"),
    ("310110", "杨浦区"),
    ("310112", "闵行区"),
    ("310113", "宝山区"),
    ("310114", "嘉定区"),
    ("310115", "浦东新区"),
    ("310116", "金山区"),
    ("310117", "松江区"),
    ("310118", "青浦区"),
    ("310119", "南汇区"),
    ("310120", "奉贤区"),
    ("310151", "崇明区"),
    ("310230", "崇明县"),
];

/// The name of a Shanghai division code ("" when unknown).
pub fn division_name(code: &str) -> &'static str {
    SHANGHAI_DIVISIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
        .unwrap_or("")
}

/// Categories of the special-equipment catalogue (特种设备目录) by code.
pub const CATEGORY_NAMES: &[(&str, &str)] = &[
    ("1000", "锅炉"),
    ("1100", "承压蒸汽锅炉"),
    ("1200", "承压热水锅炉"),
    ("1300", "有机热载体锅炉"),
    ("2000", "压力容器"),
    ("2100", "固定式压力容器"),
    ("2200", "移动式压力容器"),
    ("2300", "气瓶"),
    ("2400", "氧舱"),
    ("3000", "电梯"),
    ("3100", "曳引与强制驱动电梯"),
    ("3110", "曳引驱动乘客电梯"),
    ("3120", "曳引驱动载货电梯"),
    ("3200", "液压驱动电梯"),
    ("3300", "自动扶梯与自动人行道"),
    ("3310", "自动扶梯"),
    ("3320", "自动人行道"),
    ("3400", "其他类型电梯"),
    ("4000", "起重机械"),
    ("4100", "桥式起重机"),
    ("4110", "通用桥式起重机"),
    ("4200", "门式起重机"),
    ("4300", "塔式起重机"),
    ("4400", "流动式起重机"),
    ("4700", "门座式起重机"),
    ("4800", "升降机"),
    ("4D00", "机械式停车设备"),
    ("5000", "场（厂）内专用机动车辆"),
    ("5100", "机动工业车辆"),
    ("5110", "叉车"),
    ("5200", "非公路用旅游观光车辆"),
    ("6000", "大型游乐设施"),
    ("8000", "压力管道"),
    ("9000", "客运索道"),
];

/// The name of a category code: its own, else its group's (an old catalogue
/// code such as 1120 or 2160 is named by 1100 or 2100); "" when unknown.
pub fn category_name(code: &str) -> &'static str {
    let find = |c: &str| {
        CATEGORY_NAMES
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, n)| *n)
    };
    if code.len() != 4 || !code.is_ascii() {
        return "";
    }
    find(code)
        .or_else(|| find(&format!("{}00", &code[..2])))
        .or_else(|| find(&format!("{}000", &code[..1])))
        .unwrap_or("")
}

pub fn is_shanghai_division(code: &str) -> bool {
    SHANGHAI_DIVISIONS.iter().any(|(c, _)| *c == code)
}

/// A doubt about a use certificate number, if any. Its exact format is not
/// known for every period, so this only ever warns (never rejects on a guess).
pub fn use_certificate_doubt(cert: &str) -> Option<String> {
    let chars = cert.chars().count();
    let has_digit = cert.chars().any(|c| c.is_ascii_digit());
    if !(4..=40).contains(&chars) || !has_digit {
        Some(format!("use certificate number {cert:?} looks unusual"))
    } else {
        None
    }
}

/// Why a registration code is malformed, if it is.
pub fn registration_code_problem(code: &str) -> Option<String> {
    let b = code.as_bytes();
    if b.len() != 20 {
        return Some(format!(
            "registration code {code:?} has {} characters, not 20",
            code.chars().count()
        ));
    }
    if !b[..4]
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Some(format!(
            "registration code {code:?}: category part is not [0-9A-Z]{{4}}"
        ));
    }
    if !b[4..].iter().all(u8::is_ascii_digit) {
        return Some(format!(
            "registration code {code:?}: characters 5-20 must be digits"
        ));
    }
    if !is_shanghai_division(&code[4..10]) {
        return Some(format!(
            "registration code {code:?}: division {} is not a Shanghai division code",
            &code[4..10]
        ));
    }
    let year: u32 = code[10..14].parse().unwrap_or(0);
    let month: u32 = code[14..16].parse().unwrap_or(0);
    if !(1950..=2100).contains(&year) || !(1..=12).contains(&month) {
        return Some(format!(
            "registration code {code:?}: {year}-{month:02} is not a registration month"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_codes() {
        assert!(org_code_valid("63169638-2"));
        assert!(org_code_valid("631696382"));
        assert!(org_code_valid("71526726-X"));
        assert!(!org_code_valid("63169638-3"));
        assert!(!org_code_valid("6316963-82"));
    }

    #[test]
    fn credit_codes() {
        for c in [
            "91310000631696382C",
            "91310112087994932F",
            "9144030071526726XG",
            "91110000600037341L",
        ] {
            assert!(credit_code_valid(c), "{c}");
        }
        assert!(!credit_code_valid("91310000631696382D"));
        assert_eq!(
            org_code_of_credit("9144030071526726XG").unwrap(),
            "71526726-X"
        );
    }

    #[test]
    fn registration_codes() {
        assert_eq!(registration_code_problem("21603101012006010101"), None);
        assert_eq!(registration_code_problem("4D003101152015020001"), None);
        // Divisions of the period, since merged: 卢湾, 闸北, 南汇, 崇明县.
        for old in ["310103", "310108", "310119", "310230"] {
            assert_eq!(
                registration_code_problem(&format!("2160{old}2006010101")),
                None,
                "{old}"
            );
        }
        assert!(registration_code_problem("2160310101200601010").is_some());
        assert!(registration_code_problem("21604401012006010101").is_some());
        assert!(registration_code_problem("21603101012006130101").is_some());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_code(" ６３１６９６３８－２ "), "63169638-2");
        assert_eq!(normalize_code("91310000631696382c"), "91310000631696382C");
    }
}
