//! `[topics]` and `[[apps]]`: named topics, and which app may use which.

use std::collections::HashSet;

use super::budget;
use super::{
    APP_FLASH_ALIGN, APP_FLASH_MAX, APP_FLASH_MIN, APP_MEMORY_ALIGN, APP_MEMORY_MAX,
    APP_MEMORY_MIN, DEFAULT_APP_FLASH, MAX_APP_NAME_LEN, MAX_SETTING_LEN, MAX_TOPIC_NAME_LEN,
    RUST_KEYWORDS, Result, err, is_ident,
};
use crate::model::{App, Device, Direction, Topic};
use crate::raw::{RawApp, RawManifest};
use crate::thing_topics::THING_TOPIC_PREFIX;
use crate::topic;

pub(super) fn topics(raw: &RawManifest, device: &Device) -> Result<Vec<Topic>> {
    let mut out = Vec::with_capacity(raw.topics.len());
    for (name, t) in &raw.topics {
        let field = format!("topics.{name}");
        if !is_ident(name, MAX_TOPIC_NAME_LEN) {
            return err(
                field,
                format!(
                    "`{name}` is not a valid topic name; allowed: a lowercase letter, then lowercase letters, digits and `_`, at most {MAX_TOPIC_NAME_LEN} characters"
                ),
            );
        }
        if name.starts_with(THING_TOPIC_PREFIX) {
            return err(
                field,
                format!(
                    "`{name}` is reserved: names starting with `{THING_TOPIC_PREFIX}` are the thing model's topics, which [thing_model] grants; choose another name"
                ),
            );
        }
        let field = format!("{field}.template");
        let expanded = topic::expand(&t.template, &device.product_key, &device.device_name)
            .or_else(|e| err(&field, e))?;
        topic::check(&expanded, t.direction == Direction::Subscribe).or_else(|e| err(&field, e))?;
        out.push(Topic {
            name: name.clone(),
            template: t.template.clone(),
            topic: expanded,
            direction: t.direction,
        });
    }
    Ok(out)
}

/// Topics granted to one app by something other than its own lists (the thing model): it
/// may publish to the publish ones and subscribe to the subscribe ones.
pub(super) struct ExtraGrants<'a> {
    /// The app's index.
    pub app: usize,
    /// The topics.
    pub topics: &'a [Topic],
}

pub(super) fn apps(
    raw: &[RawApp],
    topics: &[Topic],
    extra: Option<ExtraGrants<'_>>,
) -> Result<Vec<App>> {
    if raw.is_empty() {
        return err("apps", "no apps; at least one [[apps]] entry is required");
    }
    // The kernel numbers apps with its `AppId`; more would not have an id.
    let max_apps = usize::from(aliot_kernel::kernel::AppId::MAX) + 1;
    if raw.len() > max_apps {
        return err(
            "apps",
            format!(
                "{} apps; allowed: at most {max_apps} (the kernel's app ids)",
                raw.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, app) in raw.iter().enumerate() {
        let at = format!("apps[{i}]");
        let name = &app.name;
        if !is_ident(name, MAX_APP_NAME_LEN) {
            return err(
                format!("{at}.name"),
                format!(
                    "`{name}` is not a valid app name; allowed: a lowercase letter, then lowercase letters, digits and `_`, at most {MAX_APP_NAME_LEN} characters"
                ),
            );
        }
        if RUST_KEYWORDS.contains(&name.as_str()) {
            return err(
                format!("{at}.name"),
                format!(
                    "`{name}` is a Rust keyword and cannot name the app's generated module; choose another name"
                ),
            );
        }
        if !seen.insert(name.as_str()) {
            return err(
                format!("{at}.name"),
                format!("`{name}` is used by an earlier app; app names must be unique"),
            );
        }
        let memory = match u32::try_from(app.memory) {
            Ok(m)
                if (APP_MEMORY_MIN..=APP_MEMORY_MAX).contains(&m) && m % APP_MEMORY_ALIGN == 0 =>
            {
                m
            }
            _ => {
                return err(
                    format!("{at}.memory"),
                    format!(
                        "{} bytes is not allowed; allowed: {APP_MEMORY_MIN}..={APP_MEMORY_MAX}, a multiple of {APP_MEMORY_ALIGN}",
                        app.memory
                    ),
                );
            }
        };
        let flash = match app.flash.map(u32::try_from) {
            None => DEFAULT_APP_FLASH,
            Some(Ok(f))
                if (APP_FLASH_MIN..=APP_FLASH_MAX).contains(&f) && f % APP_FLASH_ALIGN == 0 =>
            {
                f
            }
            Some(_) => {
                return err(
                    format!("{at}.flash"),
                    format!(
                        "{} bytes is not allowed; allowed: {APP_FLASH_MIN}..={APP_FLASH_MAX}, a multiple of {APP_FLASH_ALIGN} (whole erase pages); default {DEFAULT_APP_FLASH}",
                        app.flash.unwrap_or_default()
                    ),
                );
            }
        };
        let mut publish = grants(&app.publish, topics, &format!("{at}.publish"), true)?;
        let mut subscribe = grants(&app.subscribe, topics, &format!("{at}.subscribe"), false)?;
        if let Some(extra) = extra.as_ref().filter(|e| e.app == i) {
            for t in extra.topics {
                if t.direction.can_publish() {
                    publish.push(t.name.clone());
                }
                if t.direction.can_subscribe() {
                    subscribe.push(t.name.clone());
                }
            }
        }
        let budget = budget::app(app, &at, subscribe.len())?;
        let mut settings = Vec::with_capacity(app.settings.len());
        for (key, value) in &app.settings {
            let field = format!("{at}.settings.{key}");
            let key_ok = !key.is_empty()
                && key.len() <= 32
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok {
                return err(
                    field,
                    "not a valid setting name; allowed: 1 to 32 of letters, digits and `_ - .`",
                );
            }
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return err(
                        field,
                        format!(
                            "a value of type {} is not allowed; allowed: a string, number or boolean (handed to the app as a string)",
                            other.type_str()
                        ),
                    );
                }
            };
            if value.len() > MAX_SETTING_LEN {
                return err(
                    field,
                    format!(
                        "{} bytes long; allowed: at most {MAX_SETTING_LEN}",
                        value.len()
                    ),
                );
            }
            settings.push((key.clone(), value));
        }
        out.push(App {
            name: name.clone(),
            memory,
            flash,
            publish,
            subscribe,
            restart: app.restart,
            settings,
            budget,
        });
    }
    Ok(out)
}

/// Checks one grant list: every name is a defined topic whose direction allows the use.
fn grants(names: &[String], topics: &[Topic], field: &str, publish: bool) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let at = format!("{field}[{j}]");
        let Some(topic) = topics.iter().find(|t| &t.name == name) else {
            let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            return err(
                at,
                format!("unknown topic `{name}`; allowed: a name from [topics] (defined: {known})"),
            );
        };
        let (ok, want) = if publish {
            (topic.direction.can_publish(), "\"publish\" or \"both\"")
        } else {
            (topic.direction.can_subscribe(), "\"subscribe\" or \"both\"")
        };
        if !ok {
            let dir = match topic.direction {
                Direction::Publish => "publish",
                Direction::Subscribe => "subscribe",
                Direction::Both => "both",
            };
            let verb = if publish { "publish" } else { "subscribe" };
            return err(
                at,
                format!(
                    "topic `{name}` has direction = \"{dir}\"; a {verb} grant needs direction {want}"
                ),
            );
        }
        if out.contains(name) {
            return err(at, format!("`{name}` is listed twice"));
        }
        out.push(name.clone());
    }
    Ok(out)
}
