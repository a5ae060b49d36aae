//! Time, in one place: RFC 3339 UTC as stored, Unix seconds for backoff, and
//! Asia/Shanghai with its offset as operators read it.

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A time as operators read it: Asia/Shanghai with its offset,
/// "2026-11-28 09:30:05 +08:00" (from RFC 3339 text or Unix seconds).
pub fn shanghai(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +08:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// [`shanghai`] of a stored RFC 3339 time; the text itself if it is not one.
pub fn shanghai_text(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(shanghai)
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// [`shanghai`] of Unix seconds.
pub fn shanghai_unix(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(shanghai)
        .unwrap_or_default()
}

/// Seconds since an RFC 3339 time (0 if it cannot be read).
pub fn age_secs(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds())
        .unwrap_or(0)
}

/// RFC 3339 UTC of a file time (a drop's or a set's modification time).
pub fn rfc3339_of(t: std::time::SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The modification time of `path`, RFC 3339 UTC.
pub fn modified(path: &std::path::Path) -> Option<String> {
    rfc3339_of(std::fs::symlink_metadata(path).ok()?.modified().ok()?)
}

/// Today in Shanghai, "2026-11-28".
pub fn shanghai_day() -> String {
    shanghai(time::OffsetDateTime::now_utc())[..10].to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
