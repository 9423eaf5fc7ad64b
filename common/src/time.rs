//! Time, in one type: a [`Timestamp`] is a moment to the millisecond. The clock is read
//! in one place (components read it through WASI); on the wire a moment is written as
//! the reference app wrote it: ISO 8601 text for `expiresAt` ([`as_iso8601`]), whole
//! seconds in session tokens, milliseconds in our own records.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment, in milliseconds since the Unix epoch (UTC). Serialised as that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }

    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    pub const fn from_seconds(seconds: u64) -> Timestamp {
        Timestamp(seconds * 1000)
    }

    pub const fn millis(self) -> u64 {
        self.0
    }

    /// Whole seconds (session tokens and rate-limit windows count in seconds).
    pub const fn seconds(self) -> u64 {
        self.0 / 1000
    }

    pub const fn plus_seconds(self, seconds: u64) -> Timestamp {
        Timestamp(self.0 + seconds * 1000)
    }

    pub const fn plus_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0 + millis)
    }

    /// Milliseconds from `earlier` to this moment (0 if `earlier` is later).
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `2026-11-23T10:15:00.000Z`, see [`iso8601`].
    pub fn to_iso8601(self) -> String {
        iso8601(self.0)
    }

    pub fn parse_iso8601(text: &str) -> Option<Timestamp> {
        parse_iso8601(text).map(Timestamp)
    }
}

/// For `#[serde(with = "...")]`: a [`Timestamp`] written as ISO 8601 text, as the
/// reference app's `expiresAt`.
pub mod as_iso8601 {
    use super::Timestamp;

    pub fn serialize<S: serde::Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_iso8601())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Timestamp::parse_iso8601(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an ISO 8601 UTC time")))
    }
}

/// For `#[serde(with = "...")]`: a [`Timestamp`] written as whole seconds (records that
/// were first stored that way).
pub mod as_seconds {
    use super::Timestamp;

    pub fn serialize<S: serde::Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(at.seconds())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        <u64 as serde::Deserialize>::deserialize(deserializer).map(Timestamp::from_seconds)
    }
}

/// RFC 3339 / ISO 8601 UTC text of a Unix time in milliseconds, like JavaScript's
/// `Date.toISOString()`: `2026-11-23T10:15:00.000Z`.
pub fn iso8601(unix_millis: u64) -> String {
    let secs = unix_millis / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_millis % 1000
    )
}

/// The Unix time in milliseconds of a UTC timestamp as [`iso8601`] writes it
/// (`2026-11-23T10:15:00.000Z`; the fraction and its digits are optional).
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock_parts = clock.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (clock_parts.next()??, clock_parts.next()??, clock_parts.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
        || fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Milliseconds from the first three digits of the fraction.
    let millis = format!("{fraction:0<3}")[..3].parse::<u64>().ok()?;
    // Days since 1970-01-01 from the civil date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        for millis in [0, 951_782_400_000, 1_795_428_900_123, 4_102_444_799_999] {
            assert_eq!(parse_iso8601(&iso8601(millis)), Some(millis));
        }
        assert_eq!(parse_iso8601("2026-11-23T10:15:00Z"), Some(1_795_428_900_000));
        for bad in ["", "2026-11-23", "2026-13-01T00:00:00.000Z", "2026-11-23T10:15:00.000", "1969-12-31T23:59:59.000Z", "2026-11-23T10:15:00.x1Z"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_timestamp_written_in_each_wire_form() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Forms {
            #[serde(with = "as_iso8601")]
            iso: Timestamp,
            #[serde(with = "as_seconds")]
            seconds: Timestamp,
            millis: Timestamp,
        }
        let at = Timestamp::from_millis(1_795_428_900_000);
        let forms = Forms { iso: at, seconds: at, millis: at.plus_millis(5) };
        let json = serde_json::json!({"iso": "2026-11-23T10:15:00.000Z", "seconds": 1_795_428_900u64, "millis": 1_795_428_900_005u64});
        assert_eq!(serde_json::to_value(&forms).unwrap(), json);
        assert_eq!(serde_json::from_value::<Forms>(json).unwrap(), forms);
        assert!(serde_json::from_value::<Forms>(serde_json::json!({"iso": "soon", "seconds": 1, "millis": 1})).is_err());
        assert_eq!(at.plus_seconds(900).millis_since(at), 900_000);
        assert_eq!(at.millis_since(at.plus_seconds(1)), 0);
        assert_eq!((at.seconds(), Timestamp::from_seconds(at.seconds())), (1_795_428_900, at));
    }

    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_428_900_123), "2026-11-23T10:15:00.123Z");
        assert_eq!(iso8601(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
