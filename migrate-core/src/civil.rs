//! Calendar dates from day counts, without a date crate: for the diesel driver's timestamps and for the versions
//! `revision` writes in folders whose versions are timestamps.

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
