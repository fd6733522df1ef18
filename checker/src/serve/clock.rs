//! UTC timestamps as text: RFC 3339 for JSON and pages, and a compact form that sorts
//! chronologically for check ids. The service reads the wall clock here and nowhere
//! else.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::SystemTime;

/// Now, as [`rfc3339`].
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Now, as [`compact`].
pub fn now_compact() -> String {
    compact(SystemTime::now())
}

/// `2026-11-26T03:10:26Z`.
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `20261126T031026Z`: fixed width, so ids sort in creation order.
pub fn compact(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.
        assert_eq!(rfc3339(at(951_827_696)), "2000-02-29T12:34:56Z");
        // 2026-11-26 03:10:26, and a fraction of a second is cut, not rounded.
        assert_eq!(rfc3339(at(1_795_662_626)), "2026-11-26T03:10:26Z");
        let late = at(1_795_662_626) + Duration::from_millis(999);
        assert_eq!(rfc3339(late), "2026-11-26T03:10:26Z");
        assert_eq!(compact(late), "20261126T031026Z");
        // The last second of 2023 (not a leap year).
        assert_eq!(rfc3339(at(1_704_067_199)), "2023-12-31T23:59:59Z");
    }
}
