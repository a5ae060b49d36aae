//! `sedx gen`: realistic synthetic data for a whole city, reproducible from a
//! seed and streamed (flat memory at any size), with a chosen share of defects
//! whose kinds and counts are written to manifest.csv.

use crate::context::error::{IoContext, Result};
use crate::domain::ids::SHANGHAI_DIVISIONS;
use crate::wire::document::BATCH_NS;
use quick_xml::escape::escape;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// splitmix64: small, fast and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// (category code, share, conclusions): new catalogue codes and old ones (2160, 1120).
const CATEGORIES: &[(&str, u64, &[&str])] = &[
    ("3110", 40, &["合格", "合格", "合格", "复检合格", "不合格"]),
    ("3120", 6, &["合格", "复检合格"]),
    ("3310", 8, &["合格", "不合格"]),
    ("4110", 8, &["合格", "复检合格"]),
    ("4D00", 4, &["合格"]),
    ("1120", 6, &["符合要求", "基本符合要求", "不符合要求"]),
    ("1000", 3, &["符合要求", "基本符合要求"]),
    ("2160", 8, &["符合要求", "基本符合要求", "不符合要求"]),
    ("2100", 6, &["符合要求", "允许使用"]),
    ("5110", 6, &["合格", "不合格"]),
    ("6000", 3, &["合格", "停止使用"]),
    ("9000", 2, &["合格"]),
    ("2300", 3, &["合格", "报废"]),
    ("8000", 2, &["符合要求", "基本符合要求"]),
];

const NAME_HEADS: &[&str] = &[
    "宏达", "申华", "金桥", "永安", "新华", "东方", "恒丰", "华联", "瑞金", "百联", "锦江", "海通",
    "浦江", "长江", "中远", "光明", "大众", "绿地", "城建", "久事",
];
const NAME_TRADES: &[&str] = &[
    "物业管理",
    "置业",
    "商厦",
    "酒店管理",
    "热力",
    "化工",
    "机械制造",
    "物流",
    "食品",
    "医院",
    "学校",
    "地铁运营",
    "港务",
    "钢铁",
    "纺织",
    "印刷",
];
const NAME_TAILS: &[&str] = &["有限公司", "股份有限公司", "有限责任公司", "集团有限公司"];
const ROADS: &[&str] = &[
    "南京东路",
    "淮海中路",
    "四川北路",
    "世纪大道",
    "张杨路",
    "漕溪北路",
    "延安西路",
    "长寿路",
    "沪闵路",
    "共和新路",
    "曹安公路",
    "浦东南路",
    "中山北路",
    "吴中路",
    "天山路",
    "肇嘉浜路",
];
const USE_STATUS: &[&str] = &["在用", "在用", "在用", "在用", "停用", "未投入使用"];
const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A district of today's city, its share of the city's equipment (Pudong
/// largest, Chongming smallest), and the division its codes carried before a
/// merger: (old code, last month YYYYMM of the old division, share of the
/// district's equipment registered there).
struct Area {
    code: &'static str,
    weight: u64,
    old: Option<(&'static str, u32, f64)>,
}

const AREAS: &[Area] = &[
    Area {
        code: "310115",
        weight: 24,
        old: Some(("310119", 200904, 0.2)),
    },
    Area {
        code: "310101",
        weight: 7,
        old: Some(("310103", 201105, 0.4)),
    },
    Area {
        code: "310104",
        weight: 7,
        old: None,
    },
    Area {
        code: "310105",
        weight: 5,
        old: None,
    },
    Area {
        code: "310106",
        weight: 7,
        old: Some(("310108", 201510, 0.5)),
    },
    Area {
        code: "310107",
        weight: 5,
        old: None,
    },
    Area {
        code: "310109",
        weight: 4,
        old: None,
    },
    Area {
        code: "310110",
        weight: 5,
        old: None,
    },
    Area {
        code: "310112",
        weight: 10,
        old: None,
    },
    Area {
        code: "310113",
        weight: 6,
        old: None,
    },
    Area {
        code: "310114",
        weight: 5,
        old: None,
    },
    Area {
        code: "310116",
        weight: 2,
        old: None,
    },
    Area {
        code: "310117",
        weight: 5,
        old: None,
    },
    Area {
        code: "310118",
        weight: 3,
        old: None,
    },
    Area {
        code: "310120",
        weight: 3,
        old: None,
    },
    Area {
        code: "310151",
        weight: 1,
        old: Some(("310230", 201606, 1.0)),
    },
];

/// The first and last year of registrations.
const FIRST_YEAR: u32 = 1985;
const LAST_YEAR: u32 = 2025;

pub const CITY_INSTITUTE: &str = "上海市特种设备监督检验技术研究院";
pub const ELEVATOR_STATION: &str = "上海市电梯检测站";
pub const NATIONAL_CRANES: &str = "国家起重运输机械质量监督检验中心";
pub const NATIONAL_ROPEWAYS: &str = "国家客运索道质量监督检验中心";

/// Districts with an inspection institute of their own.
const DISTRICT_INSTITUTES: &[(&str, &str)] = &[
    ("310115", "上海市浦东新区特种设备监督检验所"),
    ("310112", "上海市闵行区特种设备监督检验所"),
    ("310113", "上海市宝山区特种设备监督检验所"),
    ("310114", "上海市嘉定区特种设备监督检验所"),
    ("310117", "上海市松江区特种设备监督检验所"),
];

/// The agency responsible for a piece of equipment, as the city shares them
/// out: elevators mostly to the elevator testing station, ropeways to the
/// national centre, some cranes to a national-level agency, a share of the work
/// in districts with an institute of their own there, the rest to the city
/// institute.
pub fn agency_for(rng: &mut Rng, category: &str, district: &str) -> &'static str {
    let local = DISTRICT_INSTITUTES
        .iter()
        .find(|d| d.0 == district)
        .map(|d| d.1);
    let roll = rng.below(100);
    match category.as_bytes().first() {
        Some(b'9') => NATIONAL_ROPEWAYS,
        Some(b'3') if roll < 55 => ELEVATOR_STATION,
        Some(b'4') if roll < 12 => NATIONAL_CRANES,
        Some(b'1' | b'2' | b'3' | b'4') if roll >= 75 => local.unwrap_or(CITY_INSTITUTE),
        _ => CITY_INSTITUTE,
    }
}

/// A registration month: years weighted toward the present (the city's stock
/// of equipment grew every year).
fn registration_month(rng: &mut Rng) -> (u32, u32) {
    let span = LAST_YEAR - FIRST_YEAR + 1;
    let total: u64 = (1..=span as u64).sum();
    let mut pick = rng.below(total);
    let mut year = FIRST_YEAR;
    for w in 1..=span as u64 {
        if pick < w {
            break;
        }
        pick -= w;
        year += 1;
    }
    (year, rng.below(12) as u32 + 1)
}

/// The defects `gen` can inject, with the reason code each must draw.
pub const DEFECTS: &[(&str, &str)] = &[
    ("org-code-check", "REC-ORGCODE"),
    ("credit-code-check", "REC-CREDITCODE"),
    ("registration-code-division", "REC-REGCODE"),
    ("missing-user-unit", "REC-FIELD"),
    ("district-not-shanghai", "REC-FIELD"),
    ("duplicate-equipment", "REC-DUPLICATE"),
];

fn org_body(rng: &mut Rng) -> String {
    (0..8)
        .map(|_| (b'0' + rng.below(10) as u8) as char)
        .collect()
}

fn org_check(body: &str) -> char {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).unwrap_or('0'),
    }
}

fn credit_code(division: &str, org: &str) -> String {
    let body = format!("91{division}{}", org.replace('-', ""));
    let mut sum = 0u32;
    let mut w = 1u32;
    for b in body.bytes() {
        let v = ALNUM.iter().position(|&a| a == b).unwrap_or(0) as u32;
        sum += v * w;
        w = w * 3 % 31;
    }
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", ALNUM[check as usize] as char)
}

/// Options of a generation run.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub out: PathBuf,
    /// Records in all (equipment and reports, about half each).
    pub records: u64,
    pub seed: u64,
    /// Share of equipment records given one defect.
    pub defects: f64,
    /// Share of reports that are non-statutory (they stay home, R15).
    pub non_statutory: f64,
    pub batch_size: u64,
    pub from: String,
    pub to: Option<String>,
    /// One agency for every record; None: the city's mix (see [`agency_for`]).
    pub agency: Option<String>,
    /// Whose register: inspection (equipment with technical fields, and
    /// reports) or supervision (registration data only, no reports).
    pub side: crate::domain::Role,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub files: u64,
    pub records: u64,
    pub equipment: u64,
    pub reports: u64,
    pub non_statutory: u64,
    pub defects: BTreeMap<&'static str, u64>,
}

struct Batch {
    w: BufWriter<File>,
    path: PathBuf,
    records: u64,
}

fn open_batch(opts: &GenOptions, n: u64) -> Result<Batch> {
    let path = opts.out.join(format!("gen-{:06}.xml", n));
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).at(&path)?);
    let to = opts
        .to
        .as_ref()
        .map(|t| format!(" to=\"{t}\""))
        .unwrap_or_default();
    write!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{BATCH_NS}\" from=\"{}\"{to}>\n", opts.from).at(&path)?;
    Ok(Batch {
        w,
        path,
        records: 0,
    })
}

fn close_batch(b: Batch) -> Result<()> {
    let Batch { mut w, path, .. } = b;
    w.write_all(b"</batch>\n").at(&path)?;
    w.flush().at(&path)
}

pub fn generate(opts: &GenOptions) -> Result<Generated> {
    crate::context::files::create_dir_all(&opts.out)?;
    let mut rng = Rng::new(opts.seed);
    let mut done = Generated::default();
    let total_share: u64 = CATEGORIES.iter().map(|c| c.1).sum();
    let area_total: u64 = AREAS.iter().map(|a| a.weight).sum();
    let mut sequences: std::collections::HashMap<(&str, u32), u32> = Default::default();
    let mut batch: Option<Batch> = None;
    let units: Vec<(String, String)> = (0..(opts.records / 20).max(50))
        .map(|n| {
            let name = format!(
                "上海{}{}{}{}",
                rng.pick(NAME_HEADS),
                rng.pick(NAME_TRADES),
                n,
                rng.pick(NAME_TAILS)
            );
            (name, org_body(&mut rng))
        })
        .collect();
    let mut i = 0u64;
    while done.records < opts.records {
        if batch
            .as_ref()
            .is_none_or(|b| b.records + 3 > opts.batch_size.max(3))
        {
            if let Some(b) = batch.take() {
                close_batch(b)?;
            }
            done.files += 1;
            batch = Some(open_batch(opts, done.files)?);
        }
        let Some(b) = batch.as_mut() else { continue };
        // A unique registration code for index i: (division, month, sequence) never repeat.
        let mut pick = rng.below(total_share);
        let (category, _, conclusions) = CATEGORIES
            .iter()
            .find(|c| {
                if pick < c.1 {
                    true
                } else {
                    pick -= c.1;
                    false
                }
            })
            .copied()
            .unwrap_or(CATEGORIES[0]);
        // Where and when it was registered: a district by the city's weights, a
        // month over four decades; the code carries the division of that period
        // and the next free sequence number.
        let (area, year, mon, division, seq) = loop {
            let mut pick = rng.below(area_total);
            let area = AREAS
                .iter()
                .find(|a| {
                    if pick < a.weight {
                        true
                    } else {
                        pick -= a.weight;
                        false
                    }
                })
                .unwrap_or(&AREAS[0]);
            let (year, mon) = registration_month(&mut rng);
            let division = match area.old {
                Some((old, until, share)) if year * 100 + mon <= until && rng.chance(share) => old,
                _ => area.code,
            };
            // Numbered per category and month across divisions, so a code whose
            // division a defect replaces still never meets another.
            let next = sequences.entry((category, year * 100 + mon)).or_insert(0);
            if *next < 10_000 {
                *next += 1;
                break (area, year, mon, division, *next - 1);
            }
        };
        let mut reg_code = format!("{category}{division}{year:04}{mon:02}{seq:04}");
        let district = area.code;
        let district_name = SHANGHAI_DIVISIONS
            .iter()
            .find(|d| d.0 == district)
            .map(|d| d.1)
            .unwrap_or("黄浦区");
        let agency = match &opts.agency {
            Some(a) => a.as_str(),
            None => agency_for(&mut rng, category, district),
        };
        // Units own many pieces of equipment: pick one from the city's pool, so a
        // unit name always comes with the same organization code.
        let (pool_unit, body) = units[rng.below(units.len() as u64) as usize].clone();
        let mut unit = pool_unit;
        let mut org = format!("{body}-{}", org_check(&body));
        let use_credit = rng.chance(0.5);
        let mut credit = credit_code(district, &org);
        let mut district_field = district.to_string();
        let mut defect = None;
        if rng.chance(opts.defects) {
            let (name, _) = *rng.pick(DEFECTS);
            defect = Some(name);
            // A unit of its own, so one defect never shows as another.
            unit = format!(
                "上海{}{}第{i}分公司",
                rng.pick(NAME_HEADS),
                rng.pick(NAME_TRADES)
            );
            match name {
                "org-code-check" => {
                    let good = org_check(&body);
                    let bad = if good == '0' { '1' } else { '0' };
                    org = format!("{body}-{bad}");
                }
                "credit-code-check" => {
                    let last = credit.pop().unwrap_or('0');
                    credit.push(if last == 'Y' { 'X' } else { 'Y' });
                }
                "registration-code-division" => reg_code.replace_range(4..10, "440101"),
                "missing-user-unit" => unit.clear(),
                "district-not-shanghai" => district_field = "440101".into(),
                _ => {}
            }
            *done.defects.entry(name).or_default() += 1;
        }
        let id = if use_credit && defect != Some("org-code-check") {
            format!("<creditCode>{credit}</creditCode>")
        } else if defect == Some("credit-code-check") {
            format!("<orgCode>{org}</orgCode><creditCode>{credit}</creditCode>")
        } else {
            format!("<orgCode>{org}</orgCode>")
        };
        let road = rng.pick(ROADS);
        let (internal, house, status) =
            (rng.below(40) + 1, rng.below(2000) + 1, rng.pick(USE_STATUS));
        let day = rng.below(28) + 1;
        // Registration data: supervision's; technical data: inspection's (R4).
        let registration = format!(
            "<useCertificate>沪{category}（{year}）{seq:05}</useCertificate><userUnit>{}</userUnit>{id}<address>{district_name}{road}{house}号</address><district>{district_field}</district><registrationAuthority>{district_name}质量技术监督局</registrationAuthority><registrationDate>{year:04}-{mon:02}-{day:02}</registrationDate><useStatus>{status}</useStatus><inspectionAgency>{}</inspectionAgency>",
            escape(&unit),
            escape(agency),
        );
        let equipment = match opts.side {
            crate::domain::Role::Inspection => format!(
                "  <equipment><registrationCode>{reg_code}</registrationCode><category>{category}</category><factorySerial>F{i:08}</factorySerial><internalNumber>{internal}号</internalNumber>{registration}</equipment>\n"
            ),
            crate::domain::Role::Supervision => format!(
                "  <equipment><registrationCode>{reg_code}</registrationCode><category>{category}</category>{registration}</equipment>\n"
            ),
        };
        b.w.write_all(equipment.as_bytes()).at(&b.path)?;
        b.records += 1;
        done.records += 1;
        done.equipment += 1;
        if defect == Some("duplicate-equipment") {
            b.w.write_all(equipment.as_bytes()).at(&b.path)?;
            b.records += 1;
            done.records += 1;
            done.equipment += 1;
        }
        // A report goes with sound equipment only, so each defect draws exactly one refusal.
        if opts.side == crate::domain::Role::Inspection
            && done.records < opts.records
            && matches!(defect, None | Some("duplicate-equipment"))
        {
            // An inspection after its registration, since the exchange began.
            let first = u64::from(year).max(2006);
            let y = first + rng.below(LAST_YEAR as u64 + 1 - first);
            let (m, d) = (rng.below(12) + 1, rng.below(28) + 1);
            let non_statutory = rng.chance(opts.non_statutory);
            let kind = if non_statutory {
                "commissioned"
            } else if rng.chance(0.1) {
                "installation-supervision"
            } else {
                "periodic"
            };
            let report = format!(
                "  <inspectionReport><reportNumber>JY{y}-{i:08}</reportNumber><registrationCode>{reg_code}</registrationCode><kind>{kind}</kind><date>{y}-{m:02}-{d:02}</date><conclusion>{}</conclusion><nextDue>{}-{m:02}-{d:02}</nextDue><agency>{}</agency><approved>{y}-{m:02}-{d:02}T17:30:00+08:00</approved></inspectionReport>\n",
                rng.pick(conclusions),
                y + 1,
                escape(agency),
            );
            b.w.write_all(report.as_bytes()).at(&b.path)?;
            b.records += 1;
            done.records += 1;
            done.reports += 1;
            done.non_statutory += u64::from(non_statutory);
        }
        i += 1;
    }
    if let Some(b) = batch.take() {
        close_batch(b)?;
    }
    write_manifest(&opts.out, &done)?;
    Ok(done)
}

fn write_manifest(dir: &Path, done: &Generated) -> Result<()> {
    let mut text = String::from("defect,reason_code,count\n");
    for (name, code) in DEFECTS {
        text.push_str(&format!(
            "{name},{code},{}\n",
            done.defects.get(name).copied().unwrap_or(0)
        ));
    }
    text.push_str(&format!("non-statutory,KEPT-HOME,{}\n", done.non_statutory));
    crate::context::files::write_atomic(&dir.join("manifest.csv"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids;

    #[test]
    fn generated_identifiers_are_valid() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let body = org_body(&mut rng);
            let org = format!("{body}-{}", org_check(&body));
            assert!(ids::org_code_valid(&org), "{org}");
            assert!(ids::credit_code_valid(&credit_code("310115", &org)));
        }
    }
}
