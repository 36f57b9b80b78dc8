//! The app's settings, parsed once at start.

use aliot_app::settings::{get_or, lookup};

/// Seconds between publishes when the manifest says nothing (the LuatOS demo's 20 s).
pub const DEFAULT_INTERVAL_SECS: u64 = 20;

/// What every publish carries unless the manifest says otherwise, as in the LuatOS demo.
pub const DEFAULT_PAYLOAD: &str = "LUATOS_CESHI";

/// How `publish_test` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// What every publish carries.
    pub payload: &'a [u8],
    /// Milliseconds between publishes (at least 1: never a hot loop).
    pub interval_ms: u64,
    /// Publishes before stopping; 0 = forever.
    pub count: u32,
}

impl<'a> Config<'a> {
    /// Reads `payload`, `interval_ms`, else `interval_secs`, and `count`; invalid values are
    /// logged and replaced by the defaults.
    pub fn from_settings(settings: &[(&str, &'a str)]) -> Config<'a> {
        let payload = settings
            .iter()
            .find(|(key, _)| *key == "payload")
            .map_or(DEFAULT_PAYLOAD, |(_, value)| *value);
        let default_ms = DEFAULT_INTERVAL_SECS * 1000;
        let interval_ms = match lookup::<u64>(settings, "interval_ms") {
            Ok(Some(ms)) => ms,
            Ok(None) => {
                get_or(settings, "interval_secs", DEFAULT_INTERVAL_SECS).saturating_mul(1000)
            }
            Err(value) => {
                log::warn!("setting interval_ms = {value:?} is not a number; using {default_ms}");
                default_ms
            }
        };
        let interval_ms = if interval_ms == 0 {
            log::warn!("a publish interval of 0 would be a hot loop; using {default_ms} ms");
            default_ms
        } else {
            interval_ms
        };
        Config {
            payload: payload.as_bytes(),
            interval_ms,
            count: get_or(settings, "count", 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn defaults_to_twenty_seconds_forever() {
        let c = Config::from_settings(&[]);
        assert_eq!((c.interval_ms, c.count), (20_000, 0));
        assert_eq!(c.payload, b"LUATOS_CESHI");
    }

    #[test]
    fn the_payload_can_be_set() {
        let c = Config::from_settings(&[("payload", "{\"t\":1}")]);
        assert_eq!(c.payload, b"{\"t\":1}");
    }

    #[test]
    fn interval_ms_wins_over_interval_secs() {
        let c = Config::from_settings(&[
            ("interval_secs", "5"),
            ("interval_ms", "250"),
            ("count", "3"),
        ]);
        assert_eq!((c.interval_ms, c.count), (250, 3));
        let c = Config::from_settings(&[("interval_secs", "5")]);
        assert_eq!(c.interval_ms, 5_000);
    }

    #[test]
    fn invalid_and_zero_intervals_fall_back_to_the_default() {
        assert_eq!(
            Config::from_settings(&[("interval_ms", "soon")]).interval_ms,
            20_000
        );
        assert_eq!(
            Config::from_settings(&[("interval_secs", "0")]).interval_ms,
            20_000
        );
        assert_eq!(Config::from_settings(&[("count", "-1")]).count, 0);
    }
}
