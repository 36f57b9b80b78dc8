//! The thing model (物模型) as the IoT console exports it (TSL JSON): properties, events and
//! services with their data types, read into a checked model the build can generate a typed
//! API from. First slice of the thing-model work: the parser and its errors; nothing
//! consumes the model yet.
//!
//! Tolerant on input, as the platform's exports vary: numbers in `specs` come as strings
//! (`"min": "-40"`) in the console's export and as numbers in hand-written files, and both are
//! read; unknown fields are ignored. Strict on meaning: every identifier must be what the
//! platform allows (letters, digits and `_`, 1 to 50 characters, not starting with a digit),
//! unique among its kind, every range ordered, and a data type this generator does not
//! support is an error naming the identifier and the types it does support.
//!
//! The system-defined `post` event and `set`/`get` services of an export (they list every
//! property again) are recognised by their methods and not kept: the generator derives them
//! from the properties.
//!
//! Format: the console's "物模型 TSL" export (doc-detail/88241, "What is a TSL model"): top
//! level `profile`, `properties`, `events`, `services`; a property has `identifier`, `name`,
//! `accessMode` (`r` or `rw`), `required`, `dataType {type, specs}`; an event `type` (`info`,
//! `alert`, `error`), `method`, `outputData`; a service `callType` (`sync`, `async`),
//! `method`, `inputData`, `outputData`.

use serde_json::{Map, Value};

/// Longest identifier the platform accepts.
pub const MAX_IDENTIFIER: usize = 50;
/// Longest `text` value the platform accepts (bytes).
pub const MAX_TEXT_LENGTH: u32 = 10_240;
/// Most elements of an `array` the platform accepts.
pub const MAX_ARRAY_SIZE: u32 = 512;
/// The data types the generator supports, for error messages.
pub const SUPPORTED_TYPES: &str = "int, float, double, text, bool, enum, date, struct, array";

/// A thing model.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingModel {
    /// `profile.productKey`, when the export names one.
    pub product_key: Option<String>,
    /// Properties, in file order.
    pub properties: Vec<Property>,
    /// Events other than the system `post`, in file order.
    pub events: Vec<Event>,
    /// Services other than the system `set`/`get`, in file order.
    pub services: Vec<Service>,
}

/// A property.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Its identifier (the key in Alink `params`).
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// The cloud may set it (`rw`) or only read it (`r`).
    pub writable: bool,
    /// The platform requires it.
    pub required: bool,
    /// Its type and range.
    pub data_type: DataType,
}

/// An event or service parameter, or a struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its identifier.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Its type and range.
    pub data_type: DataType,
}

/// How urgent an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `info`.
    Info,
    /// `alert`.
    Alert,
    /// `error` (the console calls it a fault).
    Error,
}

/// An event the device posts.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its identifier (`thing/event/${identifier}/post`).
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Its kind.
    pub kind: EventKind,
    /// What it carries.
    pub output: Vec<Param>,
}

/// A service the cloud invokes.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Its identifier (`thing/service/${identifier}`).
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Synchronous services arrive over RRPC and must be answered within its timeout.
    pub sync: bool,
    /// Its inputs.
    pub input: Vec<Param>,
    /// Its outputs.
    pub output: Vec<Param>,
}

/// A value's type, with the range the platform checks.
#[derive(Debug, Clone, PartialEq)]
pub enum DataType {
    /// 32-bit integer within `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
        /// Unit symbol, if any.
        unit: Option<String>,
    },
    /// Single-precision number within `min..=max`.
    Float {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Unit symbol, if any.
        unit: Option<String>,
    },
    /// Double-precision number within `min..=max`.
    Double {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Unit symbol, if any.
        unit: Option<String>,
    },
    /// UTF-8 text of at most `length` bytes.
    Text {
        /// Longest value.
        length: u32,
    },
    /// 0 or 1, with their names.
    Bool {
        /// Name of 0.
        off: String,
        /// Name of 1.
        on: String,
    },
    /// One of the listed integer values.
    Enum {
        /// Value and name, in file order.
        values: Vec<(i64, String)>,
    },
    /// A UTC time in milliseconds, sent as a decimal string.
    Date,
    /// Named fields.
    Struct(Vec<Param>),
    /// At most `size` items of one type.
    Array {
        /// Most items.
        size: u32,
        /// The items' type (no arrays of arrays).
        item: Box<DataType>,
    },
}

/// Why a thing model was refused: where (a dotted path naming identifiers) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TslError {
    /// E.g. `properties[temperature].dataType.specs.min`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl std::fmt::Display for TslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for TslError {}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, TslError> {
    Err(TslError {
        path: path.to_owned(),
        message: message.into(),
    })
}

/// Read a thing model from the console's TSL JSON export.
pub fn parse_tsl(text: &str) -> Result<ThingModel, TslError> {
    let root: Value =
        serde_json::from_str(text).or_else(|e| err("(file)", format!("not JSON: {e}")))?;
    let Some(root) = root.as_object() else {
        return err("(file)", "the thing model must be a JSON object");
    };
    let product_key = root
        .get("profile")
        .and_then(|p| p.get("productKey"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut properties = Vec::new();
    for (i, p) in list(root, "properties", "")?.iter().enumerate() {
        let path = format!("properties[{}]", label(p, i));
        let p = object(p, &path)?;
        properties.push(Property {
            identifier: identifier(p, &path)?,
            name: text_field(p, "name"),
            writable: match p.get("accessMode").and_then(Value::as_str) {
                Some("rw") | None => true,
                Some("r") => false,
                Some(other) => {
                    return err(
                        &format!("{path}.accessMode"),
                        format!("{other:?} is not an access mode; allowed: \"r\", \"rw\""),
                    );
                }
            },
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            data_type: data_type(p.get("dataType"), &format!("{path}.dataType"), Place::Top)?,
        });
    }
    unique(
        properties.iter().map(|p| p.identifier.as_str()),
        "properties",
    )?;
    let mut events = Vec::new();
    for (i, e) in list(root, "events", "")?.iter().enumerate() {
        let path = format!("events[{}]", label(e, i));
        let e = object(e, &path)?;
        if method(e) == Some("thing.event.property.post") {
            continue; // the system `post`: derived from the properties
        }
        events.push(Event {
            identifier: identifier(e, &path)?,
            name: text_field(e, "name"),
            kind: match e.get("type").and_then(Value::as_str) {
                Some("info") | None => EventKind::Info,
                Some("alert") => EventKind::Alert,
                Some("error") => EventKind::Error,
                Some(other) => {
                    return err(
                        &format!("{path}.type"),
                        format!(
                            "{other:?} is not an event type; allowed: \"info\", \"alert\", \"error\""
                        ),
                    );
                }
            },
            output: params(e, "outputData", &path)?,
        });
    }
    unique(events.iter().map(|e| e.identifier.as_str()), "events")?;
    let mut services = Vec::new();
    for (i, s) in list(root, "services", "")?.iter().enumerate() {
        let path = format!("services[{}]", label(s, i));
        let s = object(s, &path)?;
        if matches!(
            method(s),
            Some("thing.service.property.set" | "thing.service.property.get")
        ) {
            continue; // the system `set`/`get`: derived from the properties
        }
        services.push(Service {
            identifier: identifier(s, &path)?,
            name: text_field(s, "name"),
            sync: match s.get("callType").and_then(Value::as_str) {
                Some("async") | None => false,
                Some("sync") => true,
                Some(other) => {
                    return err(
                        &format!("{path}.callType"),
                        format!("{other:?} is not a call type; allowed: \"sync\", \"async\""),
                    );
                }
            },
            input: params(s, "inputData", &path)?,
            output: params(s, "outputData", &path)?,
        });
    }
    unique(services.iter().map(|s| s.identifier.as_str()), "services")?;
    Ok(ThingModel {
        product_key,
        properties,
        events,
        services,
    })
}

/// The method of an event or service, if it names one.
fn method(o: &Map<String, Value>) -> Option<&str> {
    o.get("method").and_then(Value::as_str)
}

/// An item's label in a path: its identifier when it has a string one, else its index.
fn label(v: &Value, i: usize) -> String {
    match v.get("identifier").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => i.to_string(),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, TslError> {
    v.as_object()
        .map_or_else(|| err(path, "must be a JSON object"), Ok)
}

/// `o[key]` as a list; missing is empty.
fn list<'a>(o: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value], TslError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => err(&join(path, key), "must be a JSON array"),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn text_field(o: &Map<String, Value>, key: &str) -> String {
    o.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The item's identifier, checked against the platform's rule.
fn identifier(o: &Map<String, Value>, path: &str) -> Result<String, TslError> {
    let path = format!("{path}.identifier");
    let Some(id) = o.get("identifier").and_then(Value::as_str) else {
        return err(&path, "missing; an identifier is a string");
    };
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let starts_ok = id.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if id.is_empty() || id.len() > MAX_IDENTIFIER || !ok_chars || !starts_ok {
        return err(
            &path,
            format!(
                "{id:?} is not an identifier; allowed: 1 to {MAX_IDENTIFIER} letters, digits and '_', not starting with a digit"
            ),
        );
    }
    Ok(id.to_owned())
}

fn unique<'a>(ids: impl Iterator<Item = &'a str>, path: &str) -> Result<(), TslError> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return err(&format!("{path}[{id}]"), "defined twice");
        }
    }
    Ok(())
}

/// The parameters under `key` (`inputData`, `outputData`, struct specs).
fn params(o: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<Param>, TslError> {
    param_list(list(o, key, path)?, &join(path, key), Place::Top)
}

/// Where a data type sits: the platform nests at most a struct in an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A property or parameter: any type.
    Top,
    /// An array's item: no array.
    ArrayItem,
    /// A struct's field: no struct, no array.
    StructField,
}

fn param_list(items: &[Value], path: &str, place: Place) -> Result<Vec<Param>, TslError> {
    let mut out = Vec::new();
    for (i, p) in items.iter().enumerate() {
        let path = format!("{path}[{}]", label(p, i));
        let p = object(p, &path)?;
        out.push(Param {
            identifier: identifier(p, &path)?,
            name: text_field(p, "name"),
            data_type: data_type(p.get("dataType"), &format!("{path}.dataType"), place)?,
        });
    }
    unique(out.iter().map(|p| p.identifier.as_str()), path)?;
    Ok(out)
}

/// A number given as a JSON number or as a decimal string (the console's export).
fn number(specs: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, TslError> {
    let path = format!("{path}.{key}");
    match specs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map_or_else(|| err(&path, "not a finite number"), |v| Ok(Some(v))),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => err(&path, format!("{s:?} is not a number")),
        },
        Some(other) => err(&path, format!("{other} is not a number")),
    }
}

fn data_type(v: Option<&Value>, path: &str, place: Place) -> Result<DataType, TslError> {
    let Some(v) = v.and_then(Value::as_object) else {
        return err(
            path,
            "missing; a dataType is an object with `type` and `specs`",
        );
    };
    let Some(kind) = v.get("type").and_then(Value::as_str) else {
        return err(
            &format!("{path}.type"),
            format!("missing; allowed: {SUPPORTED_TYPES}"),
        );
    };
    let specs_path = format!("{path}.specs");
    let empty = Map::new();
    let specs = match v.get("specs") {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    let unit = || {
        specs
            .get("unit")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
    };
    let range = |lo: f64, hi: f64| -> Result<(f64, f64), TslError> {
        let min = number(specs, "min", &specs_path)?.unwrap_or(lo);
        let max = number(specs, "max", &specs_path)?.unwrap_or(hi);
        if min < lo || max > hi {
            return err(
                &specs_path,
                format!("min {min} and max {max} must lie within {lo}..={hi}"),
            );
        }
        if min > max {
            return err(&specs_path, format!("min {min} is above max {max}"));
        }
        Ok((min, max))
    };
    Ok(match kind {
        "int" => {
            let (min, max) = range(f64::from(i32::MIN), f64::from(i32::MAX))?;
            if min.fract() != 0.0 || max.fract() != 0.0 {
                return err(&specs_path, "an int's min and max must be whole numbers");
            }
            DataType::Int {
                min: min as i64,
                max: max as i64,
                unit: unit(),
            }
        }
        "float" => {
            let (min, max) = range(f64::from(f32::MIN), f64::from(f32::MAX))?;
            DataType::Float {
                min,
                max,
                unit: unit(),
            }
        }
        "double" => {
            let (min, max) = range(f64::MIN, f64::MAX)?;
            DataType::Double {
                min,
                max,
                unit: unit(),
            }
        }
        "text" => {
            let length =
                number(specs, "length", &specs_path)?.unwrap_or(f64::from(MAX_TEXT_LENGTH));
            if length < 1.0 || length > f64::from(MAX_TEXT_LENGTH) || length.fract() != 0.0 {
                return err(
                    &format!("{specs_path}.length"),
                    format!("{length} is not a text length; allowed: 1..={MAX_TEXT_LENGTH}"),
                );
            }
            DataType::Text {
                length: length as u32,
            }
        }
        "bool" => DataType::Bool {
            off: specs
                .get("0")
                .and_then(Value::as_str)
                .unwrap_or("0")
                .to_owned(),
            on: specs
                .get("1")
                .and_then(Value::as_str)
                .unwrap_or("1")
                .to_owned(),
        },
        "enum" => {
            let mut values = Vec::new();
            for (key, name) in specs {
                let Ok(value) = key.trim().parse::<i64>() else {
                    return err(
                        &format!("{specs_path}.{key}"),
                        "an enum's keys are its integer values",
                    );
                };
                values.push((value, name.as_str().unwrap_or_default().to_owned()));
            }
            if values.is_empty() {
                return err(&specs_path, "an enum needs at least one value");
            }
            DataType::Enum { values }
        }
        "date" => DataType::Date,
        "struct" => {
            if place == Place::StructField {
                return err(path, "a struct inside a struct is not supported");
            }
            let fields = match v.get("specs") {
                Some(Value::Array(items)) => param_list(items, &specs_path, Place::StructField)?,
                _ => return err(&specs_path, "a struct's specs are the list of its fields"),
            };
            if fields.is_empty() {
                return err(&specs_path, "a struct needs at least one field");
            }
            DataType::Struct(fields)
        }
        "array" => {
            if place != Place::Top {
                return err(path, "an array inside a struct or array is not supported");
            }
            let size = number(specs, "size", &specs_path)?.unwrap_or(0.0);
            if size < 1.0 || size > f64::from(MAX_ARRAY_SIZE) || size.fract() != 0.0 {
                return err(
                    &format!("{specs_path}.size"),
                    format!("{size} is not an array size; allowed: 1..={MAX_ARRAY_SIZE}"),
                );
            }
            let item = data_type(
                specs.get("item"),
                &format!("{specs_path}.item"),
                Place::ArrayItem,
            )?;
            DataType::Array {
                size: size as u32,
                item: Box::new(item),
            }
        }
        other => {
            return err(
                &format!("{path}.type"),
                format!("{other:?} is not supported; allowed: {SUPPORTED_TYPES}"),
            );
        }
    })
}

#[cfg(test)]
mod tests;
