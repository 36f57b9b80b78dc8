//! A thing model shaped like the console's export (numbers as strings, the system `post`,
//! `set` and `get` included), and one broken file per error.

use super::*;

const SENSOR: &str = r#"{
  "schema": "https://iotx-tsl.oss-ap-southeast-1.aliyuncs.com/schema.json",
  "profile": {"version": "1.0", "productKey": "a1NrfDemo01"},
  "properties": [
    {"identifier": "temperature", "name": "温度", "accessMode": "r", "required": false,
     "dataType": {"type": "float", "specs": {"min": "-40", "max": "120", "unit": "°C", "step": "0.1"}}},
    {"identifier": "humidity", "name": "湿度", "accessMode": "r",
     "dataType": {"type": "float", "specs": {"min": 0, "max": 100, "unit": "%"}}},
    {"identifier": "report_interval", "name": "上报间隔", "accessMode": "rw",
     "dataType": {"type": "int", "specs": {"min": "1", "max": "3600", "unit": "s"}}},
    {"identifier": "mode", "name": "模式", "accessMode": "rw",
     "dataType": {"type": "enum", "specs": {"0": "eco", "1": "normal", "2": "boost"}}},
    {"identifier": "label", "accessMode": "rw", "dataType": {"type": "text", "specs": {"length": "64"}}},
    {"identifier": "samples", "accessMode": "r",
     "dataType": {"type": "array", "specs": {"size": "8", "item": {"type": "struct", "specs": [
        {"identifier": "t", "dataType": {"type": "double", "specs": {}}},
        {"identifier": "at", "dataType": {"type": "date", "specs": {}}}]}}}}
  ],
  "events": [
    {"identifier": "post", "name": "post", "type": "info", "required": true,
     "method": "thing.event.property.post", "outputData": []},
    {"identifier": "overheat", "name": "过热", "type": "alert", "method": "thing.event.overheat.post",
     "outputData": [{"identifier": "temperature", "dataType": {"type": "float", "specs": {"min": "-40", "max": "120"}}}]}
  ],
  "services": [
    {"identifier": "set", "callType": "async", "method": "thing.service.property.set", "inputData": [], "outputData": []},
    {"identifier": "get", "callType": "async", "method": "thing.service.property.get", "inputData": [], "outputData": []},
    {"identifier": "calibrate", "name": "校准", "callType": "sync", "method": "thing.service.calibrate",
     "inputData": [{"identifier": "offset", "dataType": {"type": "float", "specs": {"min": "-5", "max": "5"}}}],
     "outputData": [{"identifier": "ok", "dataType": {"type": "bool", "specs": {"0": "no", "1": "yes"}}}]}
  ]
}"#;

#[test]
fn the_consoles_export_reads_into_the_model() {
    let m = parse_tsl(SENSOR).unwrap();
    assert_eq!(m.product_key.as_deref(), Some("a1NrfDemo01"));
    let ids: Vec<_> = m.properties.iter().map(|p| p.identifier.as_str()).collect();
    assert_eq!(
        ids,
        [
            "temperature",
            "humidity",
            "report_interval",
            "mode",
            "label",
            "samples"
        ]
    );
    assert_eq!(
        m.properties[0].data_type,
        DataType::Float {
            min: -40.0,
            max: 120.0,
            unit: Some("°C".into())
        }
    );
    assert!(!m.properties[0].writable && m.properties[2].writable);
    assert_eq!(
        m.properties[2].data_type,
        DataType::Int {
            min: 1,
            max: 3600,
            unit: Some("s".into())
        }
    );
    assert_eq!(
        m.properties[3].data_type,
        DataType::Enum {
            values: vec![(0, "eco".into()), (1, "normal".into()), (2, "boost".into())]
        }
    );
    assert_eq!(m.properties[4].data_type, DataType::Text { length: 64 });
    match &m.properties[5].data_type {
        DataType::Array { size: 8, item } => match item.as_ref() {
            DataType::Struct(fields) => {
                assert_eq!(fields.len(), 2);
                assert_eq!(fields[1].data_type, DataType::Date);
            }
            other => panic!("item {other:?}"),
        },
        other => panic!("{other:?}"),
    }
    // The system `post`, `set` and `get` are derived, not kept.
    assert_eq!(m.events.len(), 1);
    assert_eq!(m.events[0].identifier, "overheat");
    assert_eq!(m.events[0].kind, EventKind::Alert);
    assert_eq!(m.services.len(), 1);
    let calibrate = &m.services[0];
    assert!(calibrate.sync);
    assert_eq!(calibrate.input[0].identifier, "offset");
    assert_eq!(
        calibrate.output[0].data_type,
        DataType::Bool {
            off: "no".into(),
            on: "yes".into()
        }
    );
}

/// `SENSOR` with `from` replaced by `to` must fail at `path` with a message containing `says`.
fn refused(from: &str, to: &str, path: &str, says: &str) {
    assert!(SENSOR.contains(from), "{from}");
    let e = parse_tsl(&SENSOR.replacen(from, to, 1)).unwrap_err();
    assert_eq!(e.path, path, "{e}");
    assert!(e.message.contains(says), "{e}");
}

#[test]
fn each_mistake_names_the_identifier_and_what_is_allowed() {
    refused(
        r#""type": "int""#,
        r#""type": "long""#,
        "properties[report_interval].dataType.type",
        "\"long\" is not supported; allowed: int, float, double, text, bool, enum, date, struct, array",
    );
    refused(
        r#""min": "1""#,
        r#""min": "one""#,
        "properties[report_interval].dataType.specs.min",
        "\"one\" is not a number",
    );
    refused(
        r#""max": "3600""#,
        r#""max": "0""#,
        "properties[report_interval].dataType.specs",
        "min 1 is above max 0",
    );
    refused(
        r#""max": "3600""#,
        r#""max": "3000000000""#,
        "properties[report_interval].dataType.specs",
        "must lie within",
    );
    refused(
        r#""identifier": "humidity""#,
        r#""identifier": "9humidity""#,
        "properties[9humidity].identifier",
        "letters, digits and '_', not starting with a digit",
    );
    refused(
        r#""identifier": "humidity""#,
        r#""identifier": "temperature""#,
        "properties[temperature]",
        "defined twice",
    );
    refused(
        r#""name": "上报间隔", "accessMode": "rw""#,
        r#""name": "上报间隔", "accessMode": "w""#,
        "properties[report_interval].accessMode",
        "allowed: \"r\", \"rw\"",
    );
    refused(
        r#""length": "64""#,
        r#""length": "20000""#,
        "properties[label].dataType.specs.length",
        "allowed: 1..=10240",
    );
    refused(
        r#""callType": "sync""#,
        r#""callType": "later""#,
        "services[calibrate].callType",
        "allowed: \"sync\", \"async\"",
    );
    refused(
        r#"{"identifier": "t", "dataType": {"type": "double", "specs": {}}}"#,
        r#"{"identifier": "t", "dataType": {"type": "struct", "specs": [{"identifier": "x", "dataType": {"type": "int"}}]}}"#,
        "properties[samples].dataType.specs.item.specs[t].dataType",
        "a struct inside a struct",
    );
    refused(
        r#""type": "alert""#,
        r#""type": "panic""#,
        "events[overheat].type",
        "allowed: \"info\", \"alert\", \"error\"",
    );
}

#[test]
fn not_json_and_not_an_object_are_refused() {
    assert_eq!(parse_tsl("{").unwrap_err().path, "(file)");
    assert!(
        parse_tsl("[]")
            .unwrap_err()
            .message
            .contains("must be a JSON object")
    );
    // An empty model is a model.
    let m = parse_tsl("{}").unwrap();
    assert!(m.properties.is_empty() && m.events.is_empty() && m.services.is_empty());
}
