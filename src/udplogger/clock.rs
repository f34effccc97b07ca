//! Time for the receiver: wall clock for stamps and file names, monotonic
//! clock for timeouts, both behind one trait so tests can start the clock
//! at any moment (e.g. just before midnight) without waiting for it.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Local, Timelike, Utc};

pub trait Clock: Sync {
    fn wall(&self) -> SystemTime;
    fn mono(&self) -> Instant;
}

/// The real clocks.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn mono(&self) -> Instant {
        Instant::now()
    }
}

/// A wall clock that starts at a chosen time and runs at real speed.
#[derive(Debug)]
pub struct ShiftedClock {
    start_wall: SystemTime,
    start_mono: Instant,
}

impl ShiftedClock {
    pub fn starting_at(start_wall: SystemTime) -> ShiftedClock {
        ShiftedClock {
            start_wall,
            start_mono: Instant::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn wall(&self) -> SystemTime {
        self.start_wall + self.start_mono.elapsed()
    }
    fn mono(&self) -> Instant {
        Instant::now()
    }
}

/// A wall clock read from a file holding an RFC 3339 time, re-read at
/// every reading: a test moves time by rewriting the file (e.g. across
/// midnight) without sleeping. An unreadable file reads as the real time.
#[derive(Debug)]
pub struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> FileClock {
        FileClock { path: path.into() }
    }
}

impl Clock for FileClock {
    fn wall(&self) -> SystemTime {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| parse_rfc3339(s.trim()).ok())
            .unwrap_or_else(SystemTime::now)
    }
    fn mono(&self) -> Instant {
        Instant::now()
    }
}

/// Which calendar names files and stamps (`udplogger.timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Local,
    Utc,
}

/// How often a new file starts (`udplogger.rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Daily,
    Hourly,
}

/// The receive time of a batch of datagrams, formatted once for all its
/// lines, and the file period it falls in.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub wall: SystemTime,
    /// RFC 3339 with microseconds.
    pub text: String,
    /// File name stem of the period: `YYYY-MM-DD` or `YYYY-MM-DD-HH`.
    pub period: String,
    /// `wall` in UTC to the microsecond, as detected events carry it
    /// (converted once per batch, not once per line).
    pub utc: chrono::NaiveDateTime,
}

/// Formats stamps, caching the period so the calendar is consulted once
/// per period, not once per datagram.
#[derive(Debug)]
pub struct Stamper {
    zone: Zone,
    period: Period,
    cached: Option<(SystemTime, SystemTime, String)>,
    /// The second last formatted (Unix seconds) and its text around the
    /// microseconds: `2026-11-29T12:00:00` and `Z` or `+01:00`. A stamp is
    /// taken per batch of datagrams; the calendar (and, for local time,
    /// the zone's offset) is consulted once per second, not per batch.
    second: Option<(u64, String, String)>,
}

/// RFC 3339 with microseconds, as chrono writes it: what the per-second
/// cache of [`Stamper`] must reproduce.
fn stamp_text(zone: Zone, wall: SystemTime) -> String {
    match zone {
        Zone::Utc => DateTime::<Utc>::from(wall)
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        Zone::Local => DateTime::<Local>::from(wall)
            .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string(),
    }
}

/// The six digits of a count of microseconds below a second, zero-padded
/// (`.uuuuuu` as chrono's `%.6f` and the kernel's console write it);
/// larger counts give 999999.
pub fn six_digits(micros: u64) -> [u8; 6] {
    // Two digits at a time from a table: this runs for every extended
    // line, twice.
    let v = micros.min(999_999) as usize;
    let pair = |n: usize| {
        let i = 2 * n;
        [PAIRS[i], PAIRS[i + 1]]
    };
    let [a, b] = pair(v / 10_000);
    let [c, d] = pair(v / 100 % 100);
    let [e, f] = pair(v % 100);
    [a, b, c, d, e, f]
}

/// `00` to `99`.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `.uuuuuu`: the microseconds as chrono's `%.6f` writes them.
fn push_micros(out: &mut String, micros: u32) {
    out.push('.');
    out.push_str(std::str::from_utf8(&six_digits(u64::from(micros))).unwrap_or("000000"));
}

impl Stamper {
    pub fn new(zone: Zone, period: Period) -> Stamper {
        Stamper {
            zone,
            period,
            cached: None,
            second: None,
        }
    }

    /// The stamp text of `wall`, as chrono formats it, from the cached
    /// second when `wall` falls in it.
    fn text(&mut self, wall: SystemTime) -> String {
        let Ok(since) = wall.duration_since(SystemTime::UNIX_EPOCH) else {
            // Before 1970: not worth a cache.
            return stamp_text(self.zone, wall);
        };
        let secs = since.as_secs();
        let (head, tail) = match &self.second {
            Some((s, head, tail)) if *s == secs => (head, tail),
            _ => {
                let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
                let (head, tail) = match self.zone {
                    Zone::Utc => (
                        DateTime::<Utc>::from(whole)
                            .format("%Y-%m-%dT%H:%M:%S")
                            .to_string(),
                        "Z".to_string(),
                    ),
                    Zone::Local => {
                        let t = DateTime::<Local>::from(whole);
                        (
                            t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                            t.format("%:z").to_string(),
                        )
                    }
                };
                let (_, head, tail) = self.second.insert((secs, head, tail));
                (&*head, &*tail)
            }
        };
        let mut text = String::with_capacity(head.len() + 7 + tail.len());
        text.push_str(head);
        push_micros(&mut text, since.subsec_micros());
        text.push_str(tail);
        text
    }

    pub fn stamp(&mut self, wall: SystemTime) -> Stamp {
        let text = self.text(wall);
        let period = match &self.cached {
            Some((start, end, name)) if wall >= *start && wall < *end => name.clone(),
            _ => {
                let (start, end, name) = period_of(wall, self.zone, self.period);
                self.cached = Some((start, end, name.clone()));
                name
            }
        };
        let utc = DateTime::<Utc>::from(wall);
        // Microseconds, as the log lines show them.
        let utc = utc
            .with_nanosecond(utc.nanosecond() / 1000 * 1000)
            .unwrap_or(utc)
            .naive_utc();
        Stamp {
            wall,
            text,
            period,
            utc,
        }
    }
}

/// The period holding `t`: its start, end and file name stem.
pub fn period_of(t: SystemTime, zone: Zone, period: Period) -> (SystemTime, SystemTime, String) {
    use chrono::{Datelike, TimeZone};
    fn naive_start<Tz: TimeZone>(dt: &DateTime<Tz>, period: Period) -> chrono::NaiveDateTime {
        let d = dt.date_naive();
        match period {
            Period::Daily => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
            Period::Hourly => d.and_hms_opt(dt.hour(), 0, 0).unwrap_or_default(),
        }
    }
    let name_of = |n: chrono::NaiveDateTime| match period {
        Period::Daily => format!("{:04}-{:02}-{:02}", n.year(), n.month(), n.day()),
        Period::Hourly => format!(
            "{:04}-{:02}-{:02}-{:02}",
            n.year(),
            n.month(),
            n.day(),
            n.hour()
        ),
    };
    let step = match period {
        Period::Daily => chrono::TimeDelta::days(1),
        Period::Hourly => chrono::TimeDelta::hours(1),
    };
    match zone {
        Zone::Utc => {
            let dt = DateTime::<Utc>::from(t);
            let n = naive_start(&dt, period);
            let start = Utc.from_utc_datetime(&n);
            (start.into(), (start + step).into(), name_of(n))
        }
        Zone::Local => {
            let dt = DateTime::<Local>::from(t);
            let n = naive_start(&dt, period);
            // A daylight-saving jump can skip local midnight; the period
            // then starts at the first instant that exists.
            let resolve = |n: chrono::NaiveDateTime| {
                Local
                    .from_local_datetime(&n)
                    .earliest()
                    .or_else(|| {
                        Local
                            .from_local_datetime(&(n + chrono::TimeDelta::hours(1)))
                            .earliest()
                    })
                    .map(SystemTime::from)
            };
            let start = resolve(n).unwrap_or(t).min(t);
            let end = resolve(n + step)
                .filter(|e| *e > t)
                .unwrap_or(t + Duration::from_secs(60));
            (start, end, name_of(n))
        }
    }
}

/// Parses an RFC 3339 time for `--fake-clock-start`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .map_err(|e| format!("{s:?}: not an RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn utc_day_and_hour_periods() {
        let (s, e, n) = period_of(t("2026-03-01T23:59:59.999Z"), Zone::Utc, Period::Daily);
        assert_eq!(n, "2026-03-01");
        assert_eq!(s, t("2026-03-01T00:00:00Z"));
        assert_eq!(e, t("2026-03-02T00:00:00Z"));
        let (_, _, n) = period_of(t("2026-03-02T00:00:00Z"), Zone::Utc, Period::Daily);
        assert_eq!(n, "2026-03-02");
        let (s, e, n) = period_of(t("2026-03-01T13:20:00Z"), Zone::Utc, Period::Hourly);
        assert_eq!(n, "2026-03-01-13");
        assert_eq!(
            (s, e),
            (t("2026-03-01T13:00:00Z"), t("2026-03-01T14:00:00Z"))
        );
    }

    /// The per-second cache writes what chrono writes, whatever the
    /// microseconds, across second, minute and day boundaries, in both
    /// zones.
    #[test]
    fn cached_stamps_are_chrono_s_text() {
        let base = t("2026-12-31T23:59:58.999990Z");
        for zone in [Zone::Utc, Zone::Local] {
            let mut st = Stamper::new(zone, Period::Daily);
            let steps = [0u64, 1, 9, 10, 11, 999_999, 1_000_000, 1_000_001, 2_000_017];
            for (i, us) in steps.iter().enumerate() {
                let wall = base + Duration::from_micros(*us + i as u64);
                assert_eq!(
                    st.stamp(wall).text,
                    stamp_text(zone, wall),
                    "{zone:?} +{us} us"
                );
            }
            // Before 1970 as well.
            let old = t("1969-07-20T20:17:40.5Z");
            assert!(st.stamp(old).text.starts_with("1969-07-20"));
        }
    }

    #[test]
    fn six_digits_are_every_count_zero_padded() {
        let mut want = *b"000000";
        for us in 0..1_000_000u64 {
            assert_eq!(six_digits(us), want, "{us}");
            // The next count, as a decimal odometer.
            for d in want.iter_mut().rev() {
                if *d == b'9' {
                    *d = b'0';
                } else {
                    *d += 1;
                    break;
                }
            }
        }
        assert_eq!(&six_digits(1_000_000), b"999999");
        assert_eq!(&six_digits(u64::MAX), b"999999");
    }

    #[test]
    fn stamper_switches_at_midnight() {
        let mut st = Stamper::new(Zone::Utc, Period::Daily);
        let a = st.stamp(t("2026-12-31T23:59:59.999999Z"));
        let b = st.stamp(t("2027-01-01T00:00:00Z"));
        assert_eq!(a.period, "2026-12-31");
        assert_eq!(a.text, "2026-12-31T23:59:59.999999Z");
        assert_eq!(b.period, "2027-01-01");
        assert_eq!(b.text, "2027-01-01T00:00:00.000000Z");
    }

    #[test]
    fn local_periods_contain_their_instant() {
        for s in [
            "2026-03-29T01:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-06-01T12:00:00Z",
        ] {
            for p in [Period::Daily, Period::Hourly] {
                let (a, b, _) = period_of(t(s), Zone::Local, p);
                assert!(a <= t(s) && t(s) < b, "{s} {p:?}");
            }
        }
    }

    #[test]
    fn file_clock_reads_its_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("now");
        let c = FileClock::new(&p);
        assert!(c.wall() > t("2026-01-01T00:00:00Z"));
        std::fs::write(&p, "1999-12-31T23:59:59Z\n").unwrap();
        assert_eq!(c.wall(), t("1999-12-31T23:59:59Z"));
    }

    #[test]
    fn shifted_clock_starts_where_asked() {
        let c = ShiftedClock::starting_at(t("2026-01-01T23:59:59Z"));
        let w = c.wall();
        assert!(w >= t("2026-01-01T23:59:59Z") && w < t("2026-01-02T00:01:00Z"));
    }
}
