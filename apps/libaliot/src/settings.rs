//! Reading an app's manifest settings (`key` → string value pairs).

use core::str::FromStr;

/// Looks `key` up: `Ok(None)` when absent, `Err(value)` when present but not a `T`.
pub fn lookup<'a, T: FromStr>(
    settings: &[(&str, &'a str)],
    key: &str,
) -> Result<Option<T>, &'a str> {
    match settings.iter().find(|(k, _)| *k == key) {
        None => Ok(None),
        Some((_, value)) => value.trim().parse().map(Some).map_err(|_| *value),
    }
}

/// The setting `key` as a `T`, or `default` when absent or invalid (an invalid value is
/// logged as a warning naming the key, so a typo in the manifest does not go unnoticed).
pub fn get_or<T: FromStr>(settings: &[(&str, &str)], key: &str, default: T) -> T {
    match lookup(settings, key) {
        Ok(Some(value)) => value,
        Ok(None) => default,
        Err(value) => {
            log::warn!("setting {key} = {value:?} is not valid here; using the default");
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{get_or, lookup};

    const SETTINGS: &[(&str, &str)] = &[("interval_secs", " 15 "), ("count", "many")];

    #[test]
    fn present_values_parse_absent_ones_are_none() {
        assert_eq!(lookup::<u32>(SETTINGS, "interval_secs"), Ok(Some(15)));
        assert_eq!(lookup::<u32>(SETTINGS, "interval_ms"), Ok(None));
        assert_eq!(lookup::<u32>(SETTINGS, "count"), Err("many"));
    }

    #[test]
    fn invalid_or_absent_values_fall_back_to_the_default() {
        assert_eq!(get_or(SETTINGS, "interval_secs", 20u32), 15);
        assert_eq!(get_or(SETTINGS, "count", 3u32), 3);
        assert_eq!(get_or(SETTINGS, "missing", 7u32), 7);
    }
}
