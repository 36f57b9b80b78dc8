//! A manifest naming a thing model: the TSL file is read, checked and owned by the named app
//! (the refusals are golden files in `bad/thing_model_*`).

use std::path::Path;

#[test]
fn the_thing_model_is_read_and_owned_by_its_app() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good/thing_model.toml");
    let m = aliot_manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let t = m.thing_model.expect("a thing model");
    assert_eq!(m.apps[t.app].name, "first");
    assert!(
        t.file.ends_with("tests/good/tsl/sensor.json"),
        "{:?}",
        t.file
    );
    let ids: Vec<&str> = t
        .model
        .properties
        .iter()
        .map(|p| p.identifier.as_str())
        .collect();
    assert_eq!(ids, ["temperature", "humidity", "report_interval"]);
    // Without the table there is none.
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good/minimal.toml");
    assert!(aliot_manifest::load(&plain).unwrap().thing_model.is_none());
}

#[test]
fn an_endless_file_is_refused_not_read_forever() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
    let text = std::fs::read_to_string(dir.join("thing_model.toml"))
        .unwrap()
        .replace("tsl/sensor.json", "/dev/zero");
    let e = aliot_manifest::parse(&text, &dir).unwrap_err().to_string();
    assert!(e.contains("longer than 1048576 bytes"), "{e}");
}

/// Without grant lists the app gets all the model allows, and the platform's topics for it:
/// exact publish grants, one wildcard filter for the replies and one for the services.
#[test]
fn the_thing_model_grants_its_app_the_platform_topics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good/thing_model.toml");
    let m = aliot_manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let t = m.thing_model.as_ref().expect("a thing model");
    assert_eq!(
        t.grants.post,
        ["temperature", "humidity", "report_interval"]
    );
    assert_eq!(t.grants.set, ["report_interval"], "only rw properties");
    assert_eq!(
        t.grants.events,
        ["overheat"],
        "the system post is not an event"
    );
    assert_eq!(t.grants.services, ["calibrate"], "nor set/get services");
    let sys = "/sys/a1NrfDemo01/nrf9160-dk-01/thing";
    let topic = |name: &str| m.topic(name).map(|t| t.topic.clone()).unwrap_or_default();
    assert_eq!(topic("thing_post"), format!("{sys}/event/property/post"));
    assert_eq!(
        topic("thing_post_reply"),
        format!("{sys}/event/+/post_reply")
    );
    assert_eq!(topic("thing_event_0"), format!("{sys}/event/overheat/post"));
    assert_eq!(topic("thing_set"), format!("{sys}/service/property/set"));
    assert_eq!(
        topic("thing_set_reply"),
        format!("{sys}/service/property/set_reply")
    );
    assert_eq!(topic("thing_service"), format!("{sys}/service/+"));
    assert_eq!(
        topic("thing_service_0_reply"),
        format!("{sys}/service/calibrate_reply")
    );
    let first = &m.apps[t.app];
    for name in [
        "thing_post",
        "thing_event_0",
        "thing_set_reply",
        "thing_service_0_reply",
    ] {
        assert!(
            first.publish.iter().any(|p| p == name),
            "{name} not granted"
        );
    }
    for name in ["thing_post_reply", "thing_set", "thing_service"] {
        assert!(
            first.subscribe.iter().any(|p| p == name),
            "{name} not granted"
        );
    }
    // Counted in its subscription budget (its own `get` plus the three).
    assert_eq!(first.budget.subscriptions, 4);
    // The other app gets none of them.
    assert!(
        m.apps[1]
            .publish
            .iter()
            .chain(&m.apps[1].subscribe)
            .all(|n| !n.starts_with("thing_"))
    );
}

/// Grant lists narrow what the app gets: no event, no service, no set means no topic for them.
#[test]
fn grant_lists_narrow_the_topics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
    let text = std::fs::read_to_string(dir.join("thing_model.toml"))
        .unwrap()
        .replace(
            "app = \"first\"",
            "app = \"first\"\npost = [\"humidity\"]\nset = []\nevents = []\nservices = []",
        );
    let m = aliot_manifest::parse(&text, &dir).unwrap_or_else(|e| panic!("{e}"));
    let t = m.thing_model.as_ref().expect("a thing model");
    assert_eq!(t.grants.post, ["humidity"]);
    let names: Vec<&str> = m
        .topics
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| n.starts_with("thing_"))
        .collect();
    assert_eq!(names, ["thing_post", "thing_post_reply"]);
}
