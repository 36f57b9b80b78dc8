//! Per-device topic rights, as the platform enforces them, and MQTT filter matching.

use crate::registry::Product;

/// Longest topic the platform accepts.
pub const MAX_TOPIC_LEN: usize = 128;

/// What the device wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// PUBLISH to a topic name.
    Publish,
    /// SUBSCRIBE to a topic filter.
    Subscribe,
}

/// True when MQTT topic filter `filter` matches topic name `topic` (`+` one level, `#` the rest).
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

fn has_wildcard(s: &str) -> bool {
    s.contains('+') || s.contains('#')
}

/// Checks that device `dn` of `product` may publish to / subscribe to `topic`.
///
/// Allowed: the product's `/pk/dn/user/...` categories with their rights, `/sys/pk/dn/...`,
/// `/ota/device/{inform,progress}/pk/dn` (publish) and `/ota/device/upgrade/pk/dn` (subscribe),
/// `/ext/ntp/pk/dn/request` (publish) and `/ext/ntp/pk/dn/...` (subscribe), `/broadcast/pk/...`,
/// and RRPC filters `/ext/rrpc/+/<a topic the device may subscribe to>`. Anything else is
/// refused with a reason.
pub fn check_topic(product: &Product, dn: &str, topic: &str, dir: Direction) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(format!(
            "topic length {} is outside 1..={MAX_TOPIC_LEN}",
            topic.len()
        ));
    }
    if dir == Direction::Publish && has_wildcard(topic) {
        return Err("wildcards are not allowed in a PUBLISH topic".into());
    }
    let pk = product.product_key.as_str();
    let user = format!("/{pk}/{dn}/user/");
    if let Some(rest) = topic.strip_prefix(&user) {
        return check_user(product, rest, dir);
    }
    let sys = format!("/sys/{pk}/{dn}/");
    if topic.strip_prefix(&sys).is_some_and(|r| !r.is_empty()) {
        return Ok(());
    }
    let ota_pub = [
        format!("/ota/device/inform/{pk}/{dn}"),
        format!("/ota/device/progress/{pk}/{dn}"),
    ];
    let ota_sub = format!("/ota/device/upgrade/{pk}/{dn}");
    if ota_pub.iter().any(|t| t == topic) {
        return dir_only(dir, Direction::Publish, topic);
    }
    if topic == ota_sub {
        return dir_only(dir, Direction::Subscribe, topic);
    }
    let ntp = format!("/ext/ntp/{pk}/{dn}/");
    if let Some(rest) = topic.strip_prefix(&ntp) {
        return match dir {
            Direction::Publish if rest == "request" => Ok(()),
            Direction::Publish => Err(format!("{topic}: devices publish NTP only on .../request")),
            Direction::Subscribe if !rest.is_empty() => Ok(()),
            Direction::Subscribe => Err(format!("{topic}: empty NTP topic level")),
        };
    }
    let bc = format!("/broadcast/{pk}/");
    if topic.strip_prefix(&bc).is_some_and(|r| !r.is_empty()) {
        return Ok(());
    }
    if dir == Direction::Subscribe
        && let Some(inner) = topic.strip_prefix("/ext/rrpc/+")
        && inner.starts_with('/')
        && !has_wildcard(inner)
    {
        return check_topic(product, dn, inner, Direction::Subscribe)
            .map_err(|e| format!("RRPC filter {topic}: {e}"));
    }
    Err(format!("{topic} is not a topic of device {pk}/{dn}"))
}

fn dir_only(dir: Direction, allowed: Direction, topic: &str) -> Result<(), String> {
    if dir == allowed {
        Ok(())
    } else {
        Err(format!("{topic}: device may only {allowed:?} here"))
    }
}

fn check_user(product: &Product, rest: &str, dir: Direction) -> Result<(), String> {
    let found = product.topics.iter().any(|c| match dir {
        Direction::Publish => c.rights.can_publish() && c.name == rest,
        Direction::Subscribe => {
            c.rights.can_subscribe()
                && (c.name == rest || (!has_wildcard(rest) && filter_matches(&c.name, rest)))
        }
    });
    if found {
        Ok(())
    } else {
        Err(format!("user/{rest}: no topic category grants {dir:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn demo() -> Product {
        Registry::demo().products.remove(0)
    }

    #[test]
    fn matching() {
        assert!(filter_matches("/a/+/c", "/a/b/c"));
        assert!(filter_matches("/a/#", "/a/b/c"));
        assert!(!filter_matches("/a/+", "/a/b/c"));
        assert!(filter_matches("/a/b", "/a/b"));
        assert!(!filter_matches("/a/b", "/a/c"));
    }

    #[test]
    fn user_rights() {
        let p = demo();
        let dn = "nrf9160-dk-01";
        let t = |s: &str| format!("/a1NrfDemo01/{dn}/user/{s}");
        assert!(check_topic(&p, dn, &t("update"), Direction::Publish).is_ok());
        assert!(check_topic(&p, dn, &t("update"), Direction::Subscribe).is_err());
        assert!(check_topic(&p, dn, &t("get"), Direction::Subscribe).is_ok());
        assert!(check_topic(&p, dn, &t("get"), Direction::Publish).is_err());
        assert!(check_topic(&p, dn, &t("ceshi"), Direction::Publish).is_ok());
        assert!(check_topic(&p, dn, &t("ceshi"), Direction::Subscribe).is_ok());
        assert!(check_topic(&p, dn, &t("other"), Direction::Publish).is_err());
        // another device's topic
        let other = "/a1NrfDemo01/nrf9160-dk-02/user/update";
        assert!(check_topic(&p, dn, other, Direction::Publish).is_err());
    }

    #[test]
    fn system_topics() {
        let p = demo();
        let dn = "nrf9160-dk-01";
        let pk = "a1NrfDemo01";
        let ok = |t: String, d| assert!(check_topic(&p, dn, &t, d).is_ok(), "{t}");
        let no = |t: String, d| assert!(check_topic(&p, dn, &t, d).is_err(), "{t}");
        ok(
            format!("/sys/{pk}/{dn}/thing/event/property/post"),
            Direction::Publish,
        );
        ok(format!("/sys/{pk}/{dn}/thing/#"), Direction::Subscribe);
        ok(format!("/ota/device/inform/{pk}/{dn}"), Direction::Publish);
        no(
            format!("/ota/device/inform/{pk}/{dn}"),
            Direction::Subscribe,
        );
        ok(
            format!("/ota/device/upgrade/{pk}/{dn}"),
            Direction::Subscribe,
        );
        no(format!("/ota/device/upgrade/{pk}/{dn}"), Direction::Publish);
        ok(format!("/ext/ntp/{pk}/{dn}/request"), Direction::Publish);
        ok(format!("/ext/ntp/{pk}/{dn}/response"), Direction::Subscribe);
        ok(format!("/broadcast/{pk}/x"), Direction::Subscribe);
        ok(
            format!("/ext/rrpc/+/{pk}/{dn}/user/get"),
            Direction::Subscribe,
        );
        no(
            format!("/ext/rrpc/+/{pk}/{dn}/user/update"),
            Direction::Subscribe,
        );
        no("#".to_string(), Direction::Subscribe);
        no(format!("/sys/{pk}/{dn}/+"), Direction::Publish);
        no(
            format!("/sys/{pk}/{dn}/{}", "x".repeat(120)),
            Direction::Publish,
        );
    }
}
