//! The platform's thing-model topics a `[thing_model]` grants its app, derived from the
//! grants rather than typed by hand (issue 13). They join the manifest's named topics under
//! reserved `thing_` names, so the kernel's ACL, the subscription budget and the generated
//! constants treat them like any other grant.
//!
//! Topics (Alink, doc-detail/89301; LINKSDK `aiot_dm_api.c`), `…` = `/sys/${productKey}/${deviceName}`:
//!
//! | name | direction | topic | when |
//! |---|---|---|---|
//! | `thing_post` | publish | `…/thing/event/property/post` | a property may be posted |
//! | `thing_post_reply` | subscribe | `…/thing/event/+/post_reply` | a property or event may be posted |
//! | `thing_event_<n>` | publish | `…/thing/event/<identifier>/post` | per granted event, `n` its index in the TSL |
//! | `thing_set` | subscribe | `…/thing/service/property/set` | a property may be set |
//! | `thing_set_reply` | publish | `…/thing/service/property/set_reply` | a property may be set |
//! | `thing_service` | subscribe | `…/thing/service/+` | a service is granted |
//! | `thing_service_<n>_reply` | publish | `…/thing/service/<identifier>_reply` | per granted service |
//!
//! One wildcard filter covers every reply and one every service, so a model with many events
//! costs two subscriptions, not one per event. Events and service replies are exact publish
//! grants, so the kernel refuses a post of an event the manifest did not grant. The TSL
//! identifier is not the name (it may be 50 characters and mixed case); its index is.

use crate::model::{Direction, ThingGrants};
use crate::tsl::ThingModel;

/// Prefix of every thing-model topic's name; user topics may not use it.
pub const THING_TOPIC_PREFIX: &str = "thing_";

/// One derived topic, before `${...}` expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingTopic {
    /// Its name among the manifest's topics.
    pub name: String,
    /// Its template.
    pub template: String,
    /// Publish or subscribe.
    pub direction: Direction,
}

const SYS: &str = "/sys/${productKey}/${deviceName}/thing";

/// The topics `grants` needs from `model`, in the table's order.
pub fn thing_topics(model: &ThingModel, grants: &ThingGrants) -> Vec<ThingTopic> {
    let mut out = Vec::new();
    let mut add = |name: String, path: String, direction| {
        out.push(ThingTopic {
            name,
            template: format!("{SYS}/{path}"),
            direction,
        });
    };
    if !grants.post.is_empty() {
        add(
            "thing_post".into(),
            "event/property/post".into(),
            Direction::Publish,
        );
    }
    if !grants.post.is_empty() || !grants.events.is_empty() {
        add(
            "thing_post_reply".into(),
            "event/+/post_reply".into(),
            Direction::Subscribe,
        );
    }
    for (n, e) in model.events.iter().enumerate() {
        if grants.events.contains(&e.identifier) {
            add(
                format!("thing_event_{n}"),
                format!("event/{}/post", e.identifier),
                Direction::Publish,
            );
        }
    }
    if !grants.set.is_empty() {
        add(
            "thing_set".into(),
            "service/property/set".into(),
            Direction::Subscribe,
        );
        add(
            "thing_set_reply".into(),
            "service/property/set_reply".into(),
            Direction::Publish,
        );
    }
    if !grants.services.is_empty() {
        add(
            "thing_service".into(),
            "service/+".into(),
            Direction::Subscribe,
        );
    }
    for (n, s) in model.services.iter().enumerate() {
        if grants.services.contains(&s.identifier) {
            add(
                format!("thing_service_{n}_reply"),
                format!("service/{}_reply", s.identifier),
                Direction::Publish,
            );
        }
    }
    out
}
