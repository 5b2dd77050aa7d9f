//! The decision logic of `business_hours`, free of any WebAssembly glue so that it compiles and
//! is tested on the host target.
//!
//! A schedule is a daily time window (`09:00-17:00`, possibly across midnight), a set of
//! weekdays and a time zone. The host's clock (`now-unix-ms`) is converted to local wall-clock
//! time with the tz database, so DST changes move the window with the local clock: 09:00 means
//! 09:00 local on both sides of a change.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::{TZ_VARIANTS, Tz};

/// The action word of the policy line, mirrored from the WIT `action` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Elicit,
}

/// The answer, mirrored from the WIT `verdict` variant (this enforcer never adds caveats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    Elicit(String),
}

const SECONDS_PER_DAY: u32 = 24 * 60 * 60;
const DEFAULT_WINDOW: Window = Window {
    start: 9 * 3600,
    end: 17 * 3600,
};
const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// A daily window in seconds after local midnight: `start` inclusive, `end` exclusive.
/// `start > end` crosses midnight; `end` may be 86 400 (`24:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    start: u32,
    end: u32,
}

impl Window {
    fn crosses_midnight(self) -> bool {
        self.start > self.end
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |s: u32| (s / 3600, s % 3600 / 60);
        let (sh, sm) = hm(self.start);
        let (eh, em) = hm(self.end);
        write!(f, "{sh:02}:{sm:02}-{eh:02}:{em:02}")
    }
}

/// A set of weekdays, bit 0 = Monday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days(u8);

impl Days {
    const ALL: Days = Days(0x7f);
    const MON_FRI: Days = Days(0x1f);

    fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }
}

/// A parsed, validated parameter list.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    window: Window,
    days: Days,
    /// The days as the policy wrote them (lowercased), for messages.
    days_text: String,
    tz: Tz,
}

impl Schedule {
    /// `09:00-17:00 mon-fri Europe/Berlin`, as used in messages.
    fn describe(&self) -> String {
        format!("{} {} {}", self.window, self.days_text, self.tz.name())
    }

    /// Whether the instant falls inside the schedule. A window across midnight belongs to the
    /// day it started on: with `22:00-06:00 mon-fri`, Saturday 05:00 is Friday's window.
    pub fn contains(&self, now: DateTime<Tz>) -> bool {
        let t = now.num_seconds_from_midnight();
        let today = now.weekday();
        let w = self.window;
        if w.crosses_midnight() {
            (t >= w.start && self.days.contains(today))
                || (t < w.end && self.days.contains(today.pred()))
        } else {
            t >= w.start && t < w.end && self.days.contains(today)
        }
    }
}

/// Parses the rule's parameters (any order, each optional): a time window, days and `tz=`.
///
/// The compact policy grammar splits parameters on `:`, so `09:00-17:00` arrives as `09`,
/// `00-17`, `00`; runs of parameters made only of digits and `-` are joined back with `:`
/// first (see [`rejoin_colon_split`]).
pub fn parse_params(params: &[String]) -> Result<Schedule, String> {
    let mut window = None;
    let mut days = None;
    let mut tz = None;
    for param in rejoin_colon_split(params) {
        let param = param.trim();
        if param.is_empty() {
            return Err("empty parameter: expected a time window (0900-1700), days (mon-fri) or tz=Area/City".into());
        }
        if let Some((key, value)) = param.split_once('=') {
            if !key.trim().eq_ignore_ascii_case("tz") {
                return Err(format!(
                    "unknown parameter \"{param}\": expected a time window (0900-1700), days (mon-fri) or tz=Area/City"
                ));
            }
            if tz.is_some() {
                return Err(format!(
                    "time zone given twice (\"{param}\"): expected one tz=Area/City"
                ));
            }
            tz = Some(parse_tz(value.trim())?);
        } else if param.starts_with(|c: char| c.is_ascii_digit()) {
            if window.is_some() {
                return Err(format!(
                    "time window given twice (\"{param}\"): expected one window such as 0900-1700"
                ));
            }
            window = Some(parse_window(param)?);
        } else if param.contains('/') {
            return Err(format!(
                "\"{param}\" looks like a time zone: write it as tz={param}"
            ));
        } else {
            if days.is_some() {
                return Err(format!(
                    "days given twice (\"{param}\"): expected one list such as mon-fri or mon,wed,fri"
                ));
            }
            days = Some((parse_days(param)?, param.to_ascii_lowercase()));
        }
    }
    let (days, days_text) = days.unwrap_or((Days::MON_FRI, "mon-fri".to_string()));
    Ok(Schedule {
        window: window.unwrap_or(DEFAULT_WINDOW),
        days,
        days_text,
        tz: tz.unwrap_or(Tz::UTC),
    })
}

/// Joins runs of consecutive parameters that consist only of digits and `-` with `:`.
///
/// Days (`mon-fri`) and `tz=...` always contain letters, so they are never joined; a window
/// split by the compact grammar (`09`, `00-17`, `00`) becomes `09:00-17:00` again.
pub fn rejoin_colon_split(params: &[String]) -> Vec<String> {
    let is_numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    let mut out: Vec<String> = Vec::with_capacity(params.len());
    let mut joining = false;
    for p in params {
        let numeric = is_numeric(p);
        match out.last_mut() {
            Some(last) if joining && numeric => {
                last.push(':');
                last.push_str(p);
            }
            _ => out.push(p.clone()),
        }
        joining = numeric;
    }
    out
}

/// `HH:MM-HH:MM`, also `HHMM`, `HH.MM` or `HHhMM` on either side; `24:00` only as the end.
fn parse_window(text: &str) -> Result<Window, String> {
    let bad = |why: &str| {
        format!(
            "bad time window \"{text}\": expected HH:MM-HH:MM, e.g. 09:00-17:00 (in a compact policy line write 0900-1700){why}"
        )
    };
    let (start, end) = text.split_once('-').ok_or_else(|| bad(""))?;
    let start = parse_time(start.trim()).ok_or_else(|| bad(""))?;
    let end = parse_time(end.trim()).ok_or_else(|| bad(""))?;
    if start == SECONDS_PER_DAY {
        return Err(bad(": 24:00 may only end a window"));
    }
    if start == end {
        return Err(bad(
            ": the window is empty (start equals end); use 00:00-24:00 for all day",
        ));
    }
    Ok(Window { start, end })
}

/// A time of day in seconds after midnight, or `None` if malformed.
fn parse_time(text: &str) -> Option<u32> {
    let (h, m) = match text.find([':', '.', 'h', 'H']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None if text.len() == 4 => text.split_at_checked(2)?,
        None => return None,
    };
    let digits =
        |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, &[1, 2]) || !digits(m, &[2]) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(SECONDS_PER_DAY),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// `mon-fri`, `fri-mon` (wrapping), `mon,wed,fri`, `mon-wed,sat`, `sat`, `daily` / `all`.
fn parse_days(text: &str) -> Result<Days, String> {
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "daily" | "all" | "everyday") {
        return Ok(Days::ALL);
    }
    let bad = |item: &str| {
        format!("unknown day \"{item}\": expected mon..sun, a range like mon-fri, a list or daily")
    };
    let mut days = Days(0);
    for item in lower.split(',') {
        let item = item.trim();
        match item.split_once('-') {
            Some((from, to)) => {
                let from = parse_day(from.trim()).ok_or_else(|| bad(from.trim()))?;
                let to = parse_day(to.trim()).ok_or_else(|| bad(to.trim()))?;
                let mut day = from;
                days.insert(day);
                while day != to {
                    day = day.succ();
                    days.insert(day);
                }
            }
            None => days.insert(parse_day(item).ok_or_else(|| bad(item))?),
        }
    }
    Ok(days)
}

fn parse_day(text: &str) -> Option<Weekday> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    WEEKDAYS
        .iter()
        .zip(FULL)
        .find(|(_, full)| text.len() >= 3 && (text == *full || text == &full[..3]))
        .map(|(day, _)| *day)
}

/// An IANA zone name, exactly as the tz database spells it, with a did-you-mean on failure.
fn parse_tz(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let mut msg = format!("unknown time zone \"{name}\"");
    if let Some(best) = closest_tz(name) {
        msg.push_str(&format!(" (did you mean \"{best}\"?)"));
    }
    msg.push_str(": expected an IANA name such as Europe/Berlin or America/New_York");
    Err(msg)
}

/// The tz database name nearest to `name` (case-insensitive edit distance), if close enough.
fn closest_tz(name: &str) -> Option<&'static str> {
    let needle = name.to_ascii_lowercase();
    let limit = (needle.len() / 4).max(2);
    TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .map(|candidate| {
            (
                edit_distance(&needle, &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes (zone names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.bytes().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The whole decision for one call. Fails closed: parameters that do not parse (which
/// `validate` should have caught at load time) or a clock out of range deny.
pub fn decide(action: Action, tool: &str, params: &[String], now_unix_ms: u64) -> Verdict {
    let schedule = match parse_params(params) {
        Ok(s) => s,
        Err(e) => return Verdict::Deny(format!("business_hours: {e}")),
    };
    let Some(now) = i64::try_from(now_unix_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    else {
        return Verdict::Deny(format!(
            "business_hours: the host clock ({now_unix_ms} ms) is out of range"
        ));
    };
    let local = now.with_timezone(&schedule.tz);
    if schedule.contains(local) {
        return Verdict::Allow;
    }
    let when = local.format("%a %H:%M %Z");
    let describe = schedule.describe();
    match action {
        Action::Elicit => Verdict::Elicit(format!(
            "{tool} is outside business hours ({describe}; it is now {when}); allow it anyway?"
        )),
        Action::Allow | Action::Deny => Verdict::Deny(format!(
            "{tool} is only allowed {describe}; it is now {when}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn p(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Milliseconds for a UTC time written `YYYY-MM-DD HH:MM:SS`.
    fn utc(text: &str) -> u64 {
        let dt =
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("test time");
        u64::try_from(dt.and_utc().timestamp_millis()).expect("after 1970")
    }

    fn allowed(params: &[&str], at_utc: &str) -> bool {
        decide(Action::Deny, "deploy", &p(params), utc(at_utc)) == Verdict::Allow
    }

    #[test]
    fn test_dates_are_the_weekdays_the_tests_assume() {
        let wd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date").weekday();
        assert_eq!(wd(2026, 11, 20), Weekday::Fri);
        assert_eq!(wd(2026, 11, 21), Weekday::Sat);
        assert_eq!(wd(2026, 11, 22), Weekday::Sun);
        assert_eq!(wd(2026, 11, 23), Weekday::Mon);
        assert_eq!(wd(2026, 3, 29), Weekday::Sun);
        assert_eq!(wd(2026, 10, 25), Weekday::Sun);
        assert_eq!(wd(2026, 3, 8), Weekday::Sun);
    }

    #[test]
    fn window_edges_default_schedule() {
        // Defaults: 09:00-17:00 mon-fri UTC. Friday 2026-11-20.
        let cases = [
            ("2026-11-20 08:59:59", false),
            ("2026-11-20 09:00:00", true),
            ("2026-11-20 12:00:00", true),
            ("2026-11-20 16:59:59", true),
            ("2026-11-20 17:00:00", false),
            ("2026-11-20 23:59:59", false),
            ("2026-11-20 00:00:00", false),
        ];
        for (at, want) in cases {
            assert_eq!(allowed(&[], at), want, "{at}");
            assert_eq!(
                allowed(&["09:00-17:00", "mon-fri", "tz=UTC"], at),
                want,
                "{at}"
            );
        }
    }

    #[test]
    fn weekends_and_day_lists() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "2026-11-21 10:00:00", false), // Saturday
            (&[], "2026-11-22 10:00:00", false), // Sunday
            (&[], "2026-11-23 10:00:00", true),  // Monday
            (&["daily"], "2026-11-21 10:00:00", true),
            (&["all"], "2026-11-22 10:00:00", true),
            (&["DAILY"], "2026-11-22 10:00:00", true),
            (&["sat"], "2026-11-21 10:00:00", true),
            (&["sat"], "2026-11-20 10:00:00", false),
            (&["mon,wed,fri"], "2026-11-20 10:00:00", true),
            (&["mon,wed,fri"], "2026-11-24 10:00:00", false), // Tuesday
            (&["fri-mon"], "2026-11-21 10:00:00", true),      // wraps the week
            (&["fri-mon"], "2026-11-23 10:00:00", true),
            (&["fri-mon"], "2026-11-24 10:00:00", false),
            (&["mon-wed,sat"], "2026-11-21 10:00:00", true),
            (&["Saturday"], "2026-11-21 10:00:00", true),
            (&["00:00-24:00", "daily"], "2026-11-22 23:59:59", true),
            (&["00:00-24:00", "daily"], "2026-11-22 00:00:00", true),
        ];
        for (params, at, want) in cases {
            assert_eq!(allowed(params, at), *want, "{params:?} at {at}");
        }
    }

    #[test]
    fn windows_across_midnight_belong_to_the_day_they_start() {
        let night = ["22:00-06:00", "mon-fri"];
        let cases = [
            ("2026-11-20 21:59:59", false), // Fri before the window
            ("2026-11-20 22:00:00", true),  // Fri start, inclusive
            ("2026-11-20 23:00:00", true),  // Fri 23:00
            ("2026-11-21 05:59:00", true),  // Sat 05:59 is Friday's window
            ("2026-11-21 06:00:00", false), // Sat 06:00: end is exclusive
            ("2026-11-21 23:00:00", false), // Sat 23:00: Saturday is not a window day
            ("2026-11-22 23:00:00", false), // Sun 23:00
            ("2026-11-23 05:00:00", false), // Mon 05:00 would be Sunday's window
            ("2026-11-23 22:30:00", true),  // Mon night
            ("2026-11-20 12:00:00", false), // midday is outside a night window
        ];
        for (at, want) in cases {
            assert_eq!(allowed(&night, at), want, "{at}");
        }
    }

    #[test]
    fn time_zones() {
        // Friday 2026-11-20; Berlin is UTC+1 (CET), New York UTC-5 (EST) in November.
        let berlin = ["0900-1700", "mon-fri", "tz=Europe/Berlin"];
        let ny = ["0900-1700", "mon-fri", "tz=America/New_York"];
        let cases: &[(&[&str], &str, bool)] = &[
            (&berlin, "2026-11-20 07:59:59", false),
            (&berlin, "2026-11-20 08:00:00", true),
            (&berlin, "2026-11-20 15:59:59", true),
            (&berlin, "2026-11-20 16:00:00", false),
            (&["0900-1700"], "2026-11-20 16:00:00", true), // UTC
            (&ny, "2026-11-20 13:59:59", false),
            (&ny, "2026-11-20 14:00:00", true),
            (&ny, "2026-11-20 21:59:59", true),
            (&ny, "2026-11-20 22:00:00", false),
            // Saturday 01:00 UTC is still Friday 20:00 in New York, but outside the window.
            (
                &["1800-2300", "fri", "tz=America/New_York"],
                "2026-11-21 01:00:00",
                true,
            ),
            (&["1800-2300", "fri"], "2026-11-21 01:00:00", false),
            // Monday 00:30 in Berlin is Sunday 23:30 UTC.
            (
                &["0000-0100", "mon", "tz=Europe/Berlin"],
                "2026-11-22 23:30:00",
                true,
            ),
        ];
        for (params, at, want) in cases {
            assert_eq!(allowed(params, at), *want, "{params:?} at {at}");
        }
    }

    #[test]
    fn dst_changes_follow_the_local_clock() {
        let berlin_9_17 = ["09:00-17:00", "mon-fri", "tz=Europe/Berlin"];
        let cases: &[(&[&str], &str, bool)] = &[
            // Friday before the spring change: CET, 09:00 local = 08:00 UTC.
            (&berlin_9_17, "2026-03-27 07:59:59", false),
            (&berlin_9_17, "2026-03-27 08:00:00", true),
            // Monday after it: CEST, 09:00 local = 07:00 UTC.
            (&berlin_9_17, "2026-03-30 06:59:59", false),
            (&berlin_9_17, "2026-03-30 07:00:00", true),
            (&berlin_9_17, "2026-03-30 14:59:59", true),
            (&berlin_9_17, "2026-03-30 15:00:00", false),
            // 2026-03-29: 02:00-03:00 local does not exist (01:59:59 CET -> 03:00:00 CEST).
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-03-29 00:59:59",
                false,
            ),
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-03-29 01:00:00",
                false,
            ),
            (
                &["0100-0400", "daily", "tz=Europe/Berlin"],
                "2026-03-29 01:30:00",
                true,
            ),
            // 2026-10-25: 02:00-03:00 local happens twice (CEST, then CET); both count.
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-10-24 23:59:59",
                false,
            ),
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-10-25 00:30:00",
                true,
            ),
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-10-25 01:30:00",
                true,
            ),
            (
                &["0200-0300", "daily", "tz=Europe/Berlin"],
                "2026-10-25 02:00:00",
                false,
            ),
            // New York springs forward 2026-03-08; Monday 09:00 EDT = 13:00 UTC.
            (
                &["0900-1700", "tz=America/New_York"],
                "2026-03-09 12:59:59",
                false,
            ),
            (
                &["0900-1700", "tz=America/New_York"],
                "2026-03-09 13:00:00",
                true,
            ),
        ];
        for (params, at, want) in cases {
            assert_eq!(allowed(params, at), *want, "{params:?} at {at}");
        }
    }

    #[test]
    fn verdict_depends_on_action_and_names_local_time() {
        let params = p(&["09:00-17:00", "mon-fri", "tz=Europe/Berlin"]);
        let sat = utc("2026-11-21 09:12:00"); // Sat 10:12 CET
        let deny =
            "deploy is only allowed 09:00-17:00 mon-fri Europe/Berlin; it is now Sat 10:12 CET";
        assert_eq!(
            decide(Action::Deny, "deploy", &params, sat),
            Verdict::Deny(deny.into())
        );
        assert_eq!(
            decide(Action::Allow, "deploy", &params, sat),
            Verdict::Deny(deny.into())
        );
        assert_eq!(
            decide(Action::Elicit, "deploy", &params, sat),
            Verdict::Elicit(
                "deploy is outside business hours (09:00-17:00 mon-fri Europe/Berlin; it is now Sat 10:12 CET); allow it anyway?"
                    .into()
            )
        );
        let fri = utc("2026-11-20 09:12:00");
        for action in [Action::Allow, Action::Deny, Action::Elicit] {
            assert_eq!(decide(action, "deploy", &params, fri), Verdict::Allow);
        }
        // Summer time shows its own abbreviation.
        match decide(Action::Deny, "deploy", &params, utc("2026-07-04 10:00:00")) {
            Verdict::Deny(m) => assert!(m.ends_with("it is now Sat 12:00 CEST"), "{m}"),
            other => panic!("{other:?}"),
        }
        match decide(Action::Deny, "deploy", &[], utc("2026-11-21 10:00:00")) {
            Verdict::Deny(m) => assert_eq!(
                m,
                "deploy is only allowed 09:00-17:00 mon-fri UTC; it is now Sat 10:00 UTC"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_params_fail_closed_at_enforce_time() {
        match decide(
            Action::Allow,
            "deploy",
            &p(&["9-17"]),
            utc("2026-11-20 10:00:00"),
        ) {
            Verdict::Deny(m) => assert!(
                m.starts_with("business_hours: bad time window \"9-17\""),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        match decide(Action::Elicit, "deploy", &[], u64::MAX) {
            Verdict::Deny(m) => assert!(m.contains("out of range"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn window_spellings() {
        let cases: &[(&[&str], &str)] = &[
            (&["09:00-17:00"], "09:00-17:00"),
            (&["0900-1700"], "09:00-17:00"),
            (&["09.00-17.00"], "09:00-17:00"),
            (&["09h00-17h30"], "09:00-17:30"),
            (&["9:00-17:00"], "09:00-17:00"),
            (&["22:00-06:00"], "22:00-06:00"),
            (&["00:00-24:00"], "00:00-24:00"),
            (&[" 0900 - 1700 "], "09:00-17:00"),
            // As the compact grammar splits `09:00-17:00` on ':'.
            (&["09", "00-17", "00"], "09:00-17:00"),
            (&["9", "00-17", "00", "mon-fri"], "09:00-17:00"),
            (&["mon-fri", "22", "00-06", "00", "tz=UTC"], "22:00-06:00"),
            (&["0900-17", "30"], "09:00-17:30"),
        ];
        for (params, want) in cases {
            let s = parse_params(&p(params)).unwrap_or_else(|e| panic!("{params:?}: {e}"));
            assert_eq!(s.window.to_string(), *want, "{params:?}");
        }
    }

    #[test]
    fn rejoin_only_touches_numeric_runs() {
        assert_eq!(
            rejoin_colon_split(&p(&["09", "00-17", "00"])),
            p(&["09:00-17:00"])
        );
        assert_eq!(
            rejoin_colon_split(&p(&["mon-fri", "09", "00-17", "00", "tz=Europe/Berlin"])),
            p(&["mon-fri", "09:00-17:00", "tz=Europe/Berlin"])
        );
        assert_eq!(
            rejoin_colon_split(&p(&["0900-1700", "sat"])),
            p(&["0900-1700", "sat"])
        );
        assert_eq!(rejoin_colon_split(&[]), Vec::<String>::new());
    }

    #[test]
    fn validation_messages() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["9-17"],
                "bad time window \"9-17\": expected HH:MM-HH:MM, e.g. 09:00-17:00",
            ),
            (
                &["25:00-26:00"],
                "bad time window \"25:00-26:00\": expected HH:MM-HH:MM",
            ),
            (&["09:60-17:00"], "bad time window \"09:60-17:00\""),
            (&["0900"], "bad time window \"0900\""),
            (&["0900-0900"], "the window is empty"),
            (&["24:00-06:00"], "24:00 may only end a window"),
            (
                &["tz=Europe/Berlinn"],
                "unknown time zone \"Europe/Berlinn\" (did you mean \"Europe/Berlin\"?)",
            ),
            (&["tz=europe/berlin"], "(did you mean \"Europe/Berlin\"?)"),
            (
                &["tz=Mars/Olympus"],
                "unknown time zone \"Mars/Olympus\": expected an IANA name",
            ),
            (
                &["fr"],
                "unknown day \"fr\": expected mon..sun, a range like mon-fri, a list or daily",
            ),
            (&["mon-fr"], "unknown day \"fr\""),
            (&["mon,,fri"], "unknown day \"\""),
            (
                &["foo=bar"],
                "unknown parameter \"foo=bar\": expected a time window (0900-1700), days (mon-fri) or tz=Area/City",
            ),
            (&["Europe/Berlin"], "write it as tz=Europe/Berlin"),
            (&["mon", "tue"], "days given twice"),
            (
                &["0900-1700", "sat", "1000-1100"],
                "time window given twice",
            ),
            (&["tz=UTC", "tz=UTC"], "time zone given twice"),
            (&[""], "empty parameter"),
        ];
        for (params, want) in cases {
            match parse_params(&p(params)) {
                Err(e) => assert!(e.contains(want), "{params:?}: {e}"),
                Ok(s) => panic!("{params:?} accepted: {s:?}"),
            }
        }
    }

    #[test]
    fn valid_parameter_lists() {
        for params in [
            &[][..],
            &["0900-1700"],
            &["daily"],
            &["tz=Asia/Kolkata", "daily", "2200-0600"],
            &["TZ=UTC"],
            &["mon-fri", "09", "00-17", "00", "tz=Europe/Berlin"],
        ] {
            assert!(parse_params(&p(params)).is_ok(), "{params:?}");
        }
    }

    /// Messages name the local time in every zone of the tz database without panicking
    /// (`format!` panics if a `Display` fails).
    #[test]
    fn every_zone_formats_its_local_time() {
        for tz in TZ_VARIANTS {
            let params = vec![
                format!("tz={}", tz.name()),
                "0000-0001".to_string(),
                "sun".to_string(),
            ];
            // Offsets are whole quarter hours, so hh:17 UTC is never 00:00 local.
            for at in ["2026-11-21 12:17:00", "2026-07-04 12:17:00"] {
                match decide(Action::Deny, "t", &params, utc(at)) {
                    Verdict::Deny(m) => assert!(m.contains(tz.name()), "{m}"),
                    other => panic!("{}: {other:?}", tz.name()),
                }
            }
        }
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("berlin", "berlinn"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
