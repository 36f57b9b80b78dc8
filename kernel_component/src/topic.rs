//! Topic names and filters: validation, matching, and grant coverage.
//!
//! The platform allows topics of 1..=128 characters; `+` matches one level, `#` the rest
//! (and only as the last level). A grant in the manifest is itself a filter: an app may
//! publish to any topic the grant matches and subscribe to any filter the grant covers.

use aliot_abi::MAX_TOPIC_LEN;

/// Why a topic or filter is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Empty or longer than 128 bytes.
    Length,
    /// A wildcard in a topic name, or a misplaced wildcard in a filter.
    Wildcard,
    /// A NUL character (forbidden by MQTT).
    Nul,
}

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() || s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::Length);
    }
    if s.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// A topic one can publish to: no wildcards.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// A subscription filter: `+` alone in a level, `#` alone in the last level.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if is_last => {}
            l if l.contains(['+', '#']) => return Err(TopicError::Wildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Does `filter` match the concrete `topic`?
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Does the granted filter `grant` cover every topic the requested filter `wanted` can match?
/// (`/a/#` covers `/a/+/c`; `/a/+` does not cover `/a/#`.)
pub fn filter_covers(grant: &str, wanted: &str) -> bool {
    let mut g = grant.split('/');
    let mut w = wanted.split('/');
    loop {
        match (g.next(), w.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_reject_wildcards_and_bad_lengths() {
        assert_eq!(validate_topic("/pk/dn/user/update"), Ok(()));
        assert_eq!(validate_topic(""), Err(TopicError::Length));
        assert_eq!(validate_topic(&"a".repeat(129)), Err(TopicError::Length));
        assert_eq!(validate_topic(&"a".repeat(128)), Ok(()));
        assert_eq!(validate_topic("/a/+/b"), Err(TopicError::Wildcard));
        assert_eq!(validate_topic("/a/#"), Err(TopicError::Wildcard));
        assert_eq!(validate_topic("/a\0"), Err(TopicError::Nul));
    }

    #[test]
    fn filters_allow_only_well_placed_wildcards() {
        assert_eq!(validate_filter("/a/+/b"), Ok(()));
        assert_eq!(validate_filter("/a/#"), Ok(()));
        assert_eq!(validate_filter("#"), Ok(()));
        assert_eq!(validate_filter("/a/#/b"), Err(TopicError::Wildcard));
        assert_eq!(validate_filter("/a/b+"), Err(TopicError::Wildcard));
        assert_eq!(validate_filter("/a/b#"), Err(TopicError::Wildcard));
    }

    #[test]
    fn matching() {
        assert!(filter_matches("/pk/dn/user/get", "/pk/dn/user/get"));
        assert!(!filter_matches("/pk/dn/user/get", "/pk/dn/user/get/x"));
        assert!(!filter_matches("/pk/dn/user/get/x", "/pk/dn/user/get"));
        assert!(filter_matches("/pk/+/user/get", "/pk/dn/user/get"));
        assert!(!filter_matches("/pk/+/get", "/pk/dn/user/get"));
        assert!(filter_matches("/sys/pk/dn/thing/#", "/sys/pk/dn/thing/a/b"));
        assert!(filter_matches("/sys/pk/dn/thing/#", "/sys/pk/dn/thing"));
        assert!(!filter_matches("/sys/pk/dn/thing/#", "/sys/pk/dn/other"));
    }

    #[test]
    fn coverage() {
        assert!(filter_covers("/a/b", "/a/b"));
        assert!(!filter_covers("/a/b", "/a/+"));
        assert!(filter_covers("/a/+", "/a/b"));
        assert!(filter_covers("/a/+", "/a/+"));
        assert!(!filter_covers("/a/+", "/a/#"));
        assert!(filter_covers("/a/#", "/a/+/c"));
        assert!(filter_covers("/a/#", "/a/#"));
        assert!(!filter_covers("/a/b/#", "/a/#"));
        assert!(!filter_covers("/a/b", "/a/b/c"));
    }
}
