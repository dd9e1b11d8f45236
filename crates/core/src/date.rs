//! `Date:` header values (RFC 9110 §5.6.7 IMF-fixdate) and the clock that makes them.
//!
//! Origin servers send a `Date` header; tests need it fixed so responses can be
//! compared byte for byte (wsgiref's own tests had to use a regex instead).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the gateway gets the time for `Date:` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always this instant: for byte-exact tests.
    Fixed(SystemTime),
}

impl Clock {
    /// A clock stopped at `secs` seconds after the Unix epoch.
    #[must_use]
    pub fn fixed_unix(secs: u64) -> Clock {
        Clock::Fixed(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// The current time by this clock.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// Formats a time as an IMF-fixdate, e.g. `Mon, 05 Jun 2006 18:49:54 GMT`
/// (`wsgiref.handlers.format_date_time`). Times before 1970 print as the epoch.
#[must_use]
pub fn format_date_time(t: SystemTime) -> String {
    let date = imf_fixdate(unix_secs(t));
    date.iter().map(|&b| char::from(b)).collect()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The 29 bytes of an IMF-fixdate for `secs` after the epoch.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or(b"Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(b"Jan");
    // Years past 9999 are printed modulo 10,000 rather than growing the field.
    let digit = |n: u64| b'0' + (n % 10) as u8;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(weekday);
    out[5] = digit(day / 10);
    out[6] = digit(day);
    out[8..11].copy_from_slice(month_name);
    out[12] = digit(year / 1000);
    out[13] = digit(year / 100);
    out[14] = digit(year / 10);
    out[15] = digit(year);
    out[17] = digit(h / 10);
    out[18] = digit(h);
    out[20] = digit(m / 10);
    out[21] = digit(m);
    out[23] = digit(s / 10);
    out[24] = digit(s);
    out
}

thread_local! {
    /// The last `Date` value this thread formatted, with its second.
    static LAST_DATE: std::cell::Cell<(u64, [u8; 29])> =
        const { std::cell::Cell::new((0, *b"Thu, 01 Jan 1970 00:00:00 GMT")) };
}

/// Appends the IMF-fixdate of `t` to `out`, formatting it only when the
/// second changed since this thread's last call (a busy server formats the
/// date once a second per thread, not once per response).
pub(crate) fn push_date(out: &mut Vec<u8>, t: SystemTime) {
    let secs = unix_secs(t);
    let date = LAST_DATE
        .try_with(|last| {
            let (at, date) = last.get();
            if at == secs {
                date
            } else {
                let date = imf_fixdate(secs);
                last.set((secs, date));
                date
            }
        })
        .unwrap_or_else(|_| imf_fixdate(secs));
    out.extend_from_slice(&date);
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
/// The classic era-based algorithm (400-year cycles of 146,097 days).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        let at = |s| format_date_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // The date in test_wsgiref's hello_app.
        assert_eq!(at(1_149_533_394), "Mon, 05 Jun 2006 18:49:54 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn cached_date_follows_the_clock() {
        let mut out = Vec::new();
        for secs in [1_149_533_394, 1_149_533_394, 0, 951_782_400, 951_782_400] {
            out.clear();
            push_date(&mut out, UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(
                out,
                format_date_time(UNIX_EPOCH + Duration::from_secs(secs)).as_bytes()
            );
        }
        out.clear();
        push_date(&mut out, UNIX_EPOCH + Duration::from_secs(1_149_533_394));
        assert_eq!(out, b"Mon, 05 Jun 2006 18:49:54 GMT");
    }
}
