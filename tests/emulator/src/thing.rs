//! The platform's thing model (物模型) side: a product's TSL, the checks the platform makes on
//! what a device posts, and the latest property values and events it keeps.
//!
//! Written here on purpose, not shared with the firmware's TSL reader (`aliot_manifest::tsl`):
//! the emulator is the oracle the device's generated code is tested against, so it reads the
//! console's TSL JSON on its own, straight from `serde_json::Value`.
//!
//! What the platform does (doc-detail/89301, "设备属性、事件、服务"): a post whose params name
//! an identifier the model lacks, or hold a value of the wrong type or out of range, is
//! answered with an error code and not stored. The code is 460 ("request parameter error",
//! Alink's general code); the platform's more specific codes (61xx) are UNCONFIRMED and not
//! imitated. The latest value of each property is kept, and every event in order.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

/// The platform's Alink code for a request it cannot accept.
pub const CODE_BAD_PARAMS: i64 = 460;

/// An event a device posted.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedEvent {
    /// The event's identifier.
    pub identifier: String,
    /// Its output parameters.
    pub params: Map<String, Value>,
    /// When it arrived.
    pub at: SystemTime,
}

/// Thing-model state: TSLs per product, what each device posted.
#[derive(Debug, Default)]
pub(crate) struct Things {
    /// TSL JSON per ProductKey.
    pub models: HashMap<String, Value>,
    /// Latest value of each property per device.
    pub properties: HashMap<(String, String), Map<String, Value>>,
    /// Events per device, in arrival order.
    pub events: HashMap<(String, String), Vec<PostedEvent>>,
}

/// Checks that `tsl` is a thing model the emulator can use: an object whose `properties`,
/// `events` and `services` (each optional) are lists of objects with an identifier.
pub fn check_model(tsl: &Value) -> Result<(), String> {
    let Some(root) = tsl.as_object() else {
        return Err("a TSL is a JSON object".into());
    };
    for key in ["properties", "events", "services"] {
        match root.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    if item.get("identifier").and_then(Value::as_str).is_none() {
                        return Err(format!("every entry of `{key}` needs an identifier"));
                    }
                }
            }
            Some(_) => return Err(format!("`{key}` must be a list")),
        }
    }
    Ok(())
}

fn find<'a>(tsl: &'a Value, key: &str, identifier: &str) -> Option<&'a Value> {
    tsl.get(key)?
        .as_array()?
        .iter()
        .find(|i| i.get("identifier").and_then(Value::as_str) == Some(identifier))
}

/// Checks a property post's `params` against the model's properties.
pub fn check_property_post(tsl: &Value, params: &Value) -> Result<(), String> {
    let Some(params) = params.as_object() else {
        return Err("params must be an object".into());
    };
    for (id, value) in params {
        let Some(p) = find(tsl, "properties", id) else {
            return Err(format!("{id}: not a property of the thing model"));
        };
        // A value may be posted with its time: {"value": v, "time": ms}.
        let value = match value {
            Value::Object(o) if o.contains_key("value") => &o["value"],
            v => v,
        };
        check_value(p.get("dataType"), value).map_err(|e| format!("{id}: {e}"))?;
    }
    Ok(())
}

/// Checks that every property in `params` may be set by the cloud (`accessMode` `rw`).
pub fn check_writable(tsl: &Value, params: &Value) -> Result<(), String> {
    for id in params.as_object().into_iter().flat_map(|o| o.keys()) {
        let mode = find(tsl, "properties", id)
            .and_then(|p| p.get("accessMode"))
            .and_then(Value::as_str);
        if mode == Some("r") {
            return Err(format!("{id}: read-only (accessMode \"r\")"));
        }
    }
    Ok(())
}

/// Checks the params of the event `identifier` against its `outputData`.
pub fn check_event_post(tsl: &Value, identifier: &str, params: &Value) -> Result<(), String> {
    let Some(e) = find(tsl, "events", identifier) else {
        return Err(format!("{identifier}: not an event of the thing model"));
    };
    check_params(e.get("outputData"), params)
}

/// Checks a service's input (before the cloud sends it) or output (in the device's reply).
pub fn check_service(
    tsl: &Value,
    identifier: &str,
    key: &str,
    params: &Value,
) -> Result<(), String> {
    let Some(s) = find(tsl, "services", identifier) else {
        return Err(format!("{identifier}: not a service of the thing model"));
    };
    check_params(s.get(key), params)
}

/// Whether the service `identifier` is synchronous (`callType: "sync"`).
pub fn service_is_sync(tsl: &Value, identifier: &str) -> Option<bool> {
    find(tsl, "services", identifier)
        .map(|s| s.get("callType").and_then(Value::as_str) == Some("sync"))
}

fn check_params(spec: Option<&Value>, params: &Value) -> Result<(), String> {
    let Some(params) = params.as_object() else {
        return Err("params must be an object".into());
    };
    let spec: &[Value] = spec.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    for (id, value) in params {
        let Some(p) = spec
            .iter()
            .find(|p| p.get("identifier").and_then(Value::as_str) == Some(id))
        else {
            return Err(format!("{id}: not a parameter"));
        };
        check_value(p.get("dataType"), value).map_err(|e| format!("{id}: {e}"))?;
    }
    Ok(())
}

/// A spec number, written as a string in the console's export or as a number by hand.
fn spec_number(specs: &Value, key: &str) -> Option<f64> {
    match specs.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_value(data_type: Option<&Value>, v: &Value) -> Result<(), String> {
    let Some(dt) = data_type else {
        return Err("no dataType in the model".into());
    };
    let kind = dt.get("type").and_then(Value::as_str).unwrap_or_default();
    let specs = dt.get("specs").cloned().unwrap_or(Value::Null);
    let range = |x: f64| -> Result<(), String> {
        let min = spec_number(&specs, "min").unwrap_or(f64::MIN);
        let max = spec_number(&specs, "max").unwrap_or(f64::MAX);
        if x < min || x > max {
            return Err(format!("{x} is outside {min}..={max}"));
        }
        Ok(())
    };
    match kind {
        "int" => {
            let x = v.as_i64().ok_or_else(|| format!("{v} is not an int"))?;
            range(x as f64)
        }
        "float" | "double" => {
            let x = v.as_f64().ok_or_else(|| format!("{v} is not a number"))?;
            range(x)
        }
        "bool" => match v.as_i64() {
            Some(0 | 1) => Ok(()),
            _ => Err(format!("{v} is not a bool (0 or 1)")),
        },
        "enum" => {
            let x = v
                .as_i64()
                .ok_or_else(|| format!("{v} is not an enum value"))?;
            if specs.get(x.to_string()).is_some() {
                Ok(())
            } else {
                Err(format!("{x} is not one of the enum's values"))
            }
        }
        "text" => {
            let s = v.as_str().ok_or_else(|| format!("{v} is not text"))?;
            let max = spec_number(&specs, "length").unwrap_or(10240.0);
            if s.len() as f64 > max {
                return Err(format!("{} bytes, longer than {max}", s.len()));
            }
            Ok(())
        }
        "date" => match v {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            Value::Number(n) if n.is_u64() => Ok(()),
            _ => Err(format!("{v} is not a date (UTC milliseconds)")),
        },
        "struct" => {
            let fields = specs.as_array().map_or(&[][..], Vec::as_slice);
            let Some(o) = v.as_object() else {
                return Err(format!("{v} is not a struct"));
            };
            for (id, fv) in o {
                let Some(f) = fields
                    .iter()
                    .find(|f| f.get("identifier").and_then(Value::as_str) == Some(id))
                else {
                    return Err(format!("{id}: not a field"));
                };
                check_value(f.get("dataType"), fv).map_err(|e| format!("{id}: {e}"))?;
            }
            Ok(())
        }
        "array" => {
            let items = v.as_array().ok_or_else(|| format!("{v} is not an array"))?;
            let size = spec_number(&specs, "size").unwrap_or(512.0);
            if items.len() as f64 > size {
                return Err(format!("{} items, more than {size}", items.len()));
            }
            let item = specs.get("item");
            for x in items {
                check_value(item, x)?;
            }
            Ok(())
        }
        other => Err(format!("the model's type {other:?} is unknown")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tsl() -> Value {
        json!({
            "properties": [
                {"identifier": "temperature", "dataType": {"type": "float", "specs": {"min": "-40", "max": "120"}}},
                {"identifier": "humidity", "dataType": {"type": "int", "specs": {"min": 0, "max": 100}}},
                {"identifier": "mode", "dataType": {"type": "enum", "specs": {"0": "off", "2": "auto"}}},
                {"identifier": "on", "dataType": {"type": "bool", "specs": {"0": "no", "1": "yes"}}},
                {"identifier": "label", "dataType": {"type": "text", "specs": {"length": "4"}}}
            ],
            "events": [{"identifier": "overheat", "outputData": [
                {"identifier": "temperature", "dataType": {"type": "float", "specs": {"min": "-40", "max": "120"}}}]}],
            "services": [{"identifier": "calibrate", "callType": "async",
                "inputData": [{"identifier": "offset", "dataType": {"type": "float", "specs": {"min": "-5", "max": "5"}}}],
                "outputData": [{"identifier": "applied", "dataType": {"type": "bool", "specs": {}}}]}]
        })
    }

    #[test]
    fn posts_in_the_model_and_in_range_pass() {
        let t = tsl();
        let ok = json!({"temperature": 21.5, "humidity": 40, "mode": 2, "on": 1, "label": "abcd"});
        assert_eq!(check_property_post(&t, &ok), Ok(()));
        let timed = json!({"humidity": {"value": 40, "time": 1_700_000_000_000u64}});
        assert_eq!(check_property_post(&t, &timed), Ok(()));
        assert_eq!(
            check_event_post(&t, "overheat", &json!({"temperature": 99})),
            Ok(())
        );
        assert_eq!(
            check_service(&t, "calibrate", "outputData", &json!({"applied": 1})),
            Ok(())
        );
    }

    #[test]
    fn wrong_identifiers_types_and_ranges_are_named() {
        let t = tsl();
        let cases = [
            (json!({"pressure": 1}), "pressure: not a property"),
            (
                json!({"temperature": 121}),
                "temperature: 121 is outside -40..=120",
            ),
            (json!({"humidity": 4.5}), "humidity: 4.5 is not an int"),
            (json!({"humidity": "40"}), "humidity: \"40\" is not an int"),
            (
                json!({"mode": 1}),
                "mode: 1 is not one of the enum's values",
            ),
            (json!({"on": 2}), "on: 2 is not a bool"),
            (json!({"label": "abcde"}), "label: 5 bytes, longer than 4"),
            (json!([1]), "params must be an object"),
        ];
        for (params, want) in cases {
            let got = check_property_post(&t, &params).unwrap_err();
            assert!(got.starts_with(want), "{params}: {got}");
        }
        assert!(check_event_post(&t, "smoke", &json!({})).is_err());
        assert!(check_service(&t, "calibrate", "inputData", &json!({"offset": 6})).is_err());
    }
}
