//! Calendar dates and times from day and second counts, without a date crate: for the diesel driver's timestamps,
//! the versions `revision` writes in folders whose versions are timestamps, and the time of a recorded failure.

/// The civil (proleptic Gregorian) date of the day `days` after 1970-01-01: `(year, month, day)`, month and day
/// one-based. Howard Hinnant's `civil_from_days`.
///
/// ```
/// assert_eq!(migrate_core::civil::date_of_day(0), (1970, 1, 1));
/// assert_eq!(migrate_core::civil::date_of_day(10_957), (2000, 1, 1));
/// assert_eq!(migrate_core::civil::date_of_day(-1), (1969, 12, 31));
/// ```
pub fn date_of_day(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// A moment in UTC, to the second, as the calendar and the clock show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The year (proleptic Gregorian).
    pub year: i64,
    /// 1 to 12.
    pub month: i64,
    /// 1 to 31.
    pub day: i64,
    /// 0 to 23.
    pub hour: i64,
    /// 0 to 59.
    pub minute: i64,
    /// 0 to 59.
    pub second: i64,
}

/// The moment `seconds` after 1970-01-01 00:00:00 UTC.
///
/// ```
/// let moment = migrate_core::civil::date_time(1_796_436_780);
/// assert_eq!((moment.year, moment.month, moment.day), (2026, 12, 5));
/// assert_eq!((moment.hour, moment.minute, moment.second), (2, 13, 0));
/// ```
pub fn date_time(seconds: i64) -> DateTime {
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = date_of_day(days);
    DateTime { year, month, day, hour: of_day / 3_600, minute: of_day / 60 % 60, second: of_day % 60 }
}

/// Seconds since 1970-01-01 00:00:00 UTC now, by this machine's clock (0 before then).
pub fn now_seconds() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(elapsed).unwrap_or(i64::MAX)
}
