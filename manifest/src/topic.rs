//! Topic templates: `${...}` expansion and the checks on the expanded topic.
//!
//! Written by hand: the rules are Alibaba's (1..=128 characters, a fixed set of characters
//! per level) plus MQTT's wildcard placement, and no crate checks exactly these.

/// Longest topic the platform accepts (LINKSDK `CORE_MQTT_TOPIC_MAXLEN`); the ABI's limit,
/// which the kernel's queue minimums assume.
pub const MAX_TOPIC_LEN: usize = aliot_abi::MAX_TOPIC_LEN;

/// The variables a template may use.
pub const VARIABLES: &str = "${productKey}, ${deviceName}";

/// Replaces `${productKey}` and `${deviceName}` in `template`.
///
/// Any other `${...}` (or an unclosed `${`) is an error naming the allowed variables.
pub fn expand(template: &str, product_key: &str, device_name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unclosed `${{` in `{template}`; allowed variables: {VARIABLES}"
            ));
        };
        match &after[..end] {
            "productKey" => out.push_str(product_key),
            "deviceName" => out.push_str(device_name),
            other => {
                return Err(format!(
                    "unknown variable `${{{other}}}` in `{template}`; allowed variables: {VARIABLES}"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `c` may appear in a topic level (Alibaba: letters, digits, `_`; device names add
/// `.@:-`, which can appear in a level through `${deviceName}`).
fn is_level_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | ':' | '-')
}

/// Checks an expanded topic (or filter, when `wildcards_allowed`).
pub fn check(topic: &str, wildcards_allowed: bool) -> Result<(), String> {
    let Some(body) = topic.strip_prefix('/') else {
        return Err(format!("`{topic}` must start with `/`"));
    };
    let len = topic.chars().count();
    if len > MAX_TOPIC_LEN {
        return Err(format!(
            "`{topic}` is {len} characters after expansion; at most {MAX_TOPIC_LEN} are allowed"
        ));
    }
    let levels: Vec<&str> = body.split('/').collect();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        match *level {
            "" => {
                return Err(format!(
                    "`{topic}` has an empty level (`//`, a lone `/` or a trailing `/`); every level needs at least one character"
                ));
            }
            "+" | "#" if !wildcards_allowed => {
                return Err(format!(
                    "`{topic}` contains the wildcard `{level}`; wildcards `+` and `#` are allowed only in topics with direction = \"subscribe\""
                ));
            }
            "#" if i != last => {
                return Err(format!("`{topic}`: `#` is allowed only as the last level"));
            }
            "+" | "#" => {}
            _ => {
                if let Some(c) = level.chars().find(|c| !is_level_char(*c)) {
                    let hint = if c == '+' || c == '#' {
                        "; a wildcard must fill a whole level, like `/a/+/b` or `/a/#`"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "`{topic}` contains `{c}`; allowed in a level: letters, digits and `_ . @ : -`{hint}"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_variables() {
        assert_eq!(
            expand("/${productKey}/${deviceName}/user/get", "pk", "dn").as_deref(),
            Ok("/pk/dn/user/get")
        );
    }

    #[test]
    fn rejects_unknown_and_unclosed_variables() {
        let e = expand("/${productKey}/${deviceId}/x", "pk", "dn").unwrap_err();
        assert!(e.contains("unknown variable `${deviceId}`"), "{e}");
        let e = expand("/${productKey", "pk", "dn").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
    }

    #[test]
    fn wildcards_only_where_allowed() {
        assert!(check("/a/+/b", true).is_ok());
        assert!(check("/a/#", true).is_ok());
        assert!(
            check("/a/+/b", false)
                .unwrap_err()
                .contains("direction = \"subscribe\"")
        );
        assert!(check("/a/#/b", true).unwrap_err().contains("last level"));
        assert!(check("/a/b+", true).unwrap_err().contains("whole level"));
    }

    #[test]
    fn shape_and_length() {
        assert!(check("a/b", false).unwrap_err().contains("start with `/`"));
        assert!(check("/a//b", false).unwrap_err().contains("empty level"));
        assert!(check("/a/", false).unwrap_err().contains("empty level"));
        assert!(check("/a b", false).unwrap_err().contains("contains ` `"));
        let long = format!("/{}", "a".repeat(MAX_TOPIC_LEN));
        assert!(check(&long, false).unwrap_err().contains("at most 128"));
        let ok = format!("/{}", "a".repeat(MAX_TOPIC_LEN - 1));
        assert!(check(&ok, false).is_ok());
    }
}
