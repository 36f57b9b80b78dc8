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
    assert_eq!(t.model.properties.len(), 1);
    assert_eq!(t.model.properties[0].identifier, "temperature");
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
