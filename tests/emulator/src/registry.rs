//! The device registry: products (keys, secrets, topic categories) and their devices.
//!
//! Loaded from TOML (see the crate README for the format) or built in code; the emulator keeps
//! it behind a lock and changes it as devices register, log in and are reset.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::EmulatorError;

/// Rights of a custom topic category, as set in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicRights {
    /// The device may publish.
    #[serde(alias = "publish")]
    Pub,
    /// The device may subscribe.
    #[serde(alias = "subscribe")]
    Sub,
    /// The device may publish and subscribe.
    #[serde(alias = "publish_subscribe", alias = "pub_sub")]
    PubSub,
}

impl TopicRights {
    /// True when the device may publish on the category.
    pub fn can_publish(self) -> bool {
        matches!(self, TopicRights::Pub | TopicRights::PubSub)
    }
    /// True when the device may subscribe to the category.
    pub fn can_subscribe(self) -> bool {
        matches!(self, TopicRights::Sub | TopicRights::PubSub)
    }
}

/// A custom topic category, relative to `/${productKey}/${deviceName}/user/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicCategory {
    /// Path below `user/`, e.g. `update/error`; may hold `+`/`#` for Subscribe-only categories.
    pub name: String,
    /// Publish / Subscribe rights.
    pub rights: TopicRights,
}

/// A device of a product.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// DeviceName.
    pub name: String,
    /// DeviceSecret; `None` while a dynamic-registration device has not been issued one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Set once the device has logged in with its credentials (blocks re-registration).
    #[serde(default)]
    pub activated: bool,
    /// `(clientId, deviceToken)` issued by not-pre-registered (`regnwl`) registration.
    #[serde(skip)]
    pub token: Option<(String, String)>,
    /// Firmware versions reported on `/ota/device/inform`, by module ("default" for none).
    #[serde(skip)]
    pub versions: std::collections::BTreeMap<String, String>,
    /// Has logged in with MQTT 5 (see [`Product::mqtt5_sticky`]).
    #[serde(skip)]
    pub used_mqtt5: bool,
}

impl fmt::Debug for Device {
    // Secrets are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.name)
            .field("has_secret", &self.secret.is_some())
            .field("activated", &self.activated)
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

/// A product (ProductKey) with its devices.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Human name, e.g. `nrf-demo`.
    #[serde(default)]
    pub name: String,
    /// ProductKey.
    pub product_key: String,
    /// ProductSecret (used only by dynamic registration).
    #[serde(default)]
    pub product_secret: String,
    /// Dynamic registration (一型一密) enabled for pre-registered devices.
    #[serde(default)]
    pub dynamic_registration: bool,
    /// Registration of devices that were not pre-registered (`regnwl`) allowed.
    #[serde(default)]
    pub allow_unregistered: bool,
    /// Once a device logged in with MQTT 5, refuse its 3.1.1 logins (as the platform does).
    /// Off by default so tests may switch versions freely.
    #[serde(default)]
    pub mqtt5_sticky: bool,
    /// Custom topic categories.
    #[serde(default, rename = "topic")]
    pub topics: Vec<TopicCategory>,
    /// Devices.
    #[serde(default, rename = "device")]
    pub devices: Vec<Device>,
}

impl fmt::Debug for Product {
    // The ProductSecret is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Product")
            .field("name", &self.name)
            .field("product_key", &self.product_key)
            .field("dynamic_registration", &self.dynamic_registration)
            .field("allow_unregistered", &self.allow_unregistered)
            .field("mqtt5_sticky", &self.mqtt5_sticky)
            .field("topics", &self.topics)
            .field("devices", &self.devices)
            .finish()
    }
}

impl Product {
    /// The device called `dn`, if registered.
    pub fn device(&self, dn: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == dn)
    }
    /// Mutable access to the device called `dn`.
    pub fn device_mut(&mut self, dn: &str) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.name == dn)
    }
}

/// All products known to the emulator.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Products.
    #[serde(default, rename = "product")]
    pub products: Vec<Product>,
}

/// The four topic categories of both demo products.
fn demo_topics() -> Vec<TopicCategory> {
    [
        ("update", TopicRights::Pub),
        ("update/error", TopicRights::Pub),
        ("get", TopicRights::Sub),
        ("ceshi", TopicRights::PubSub),
    ]
    .into_iter()
    .map(|(n, r)| TopicCategory {
        name: n.to_string(),
        rights: r,
    })
    .collect()
}

fn device(name: &str, secret: Option<&str>) -> Device {
    Device {
        name: name.to_string(),
        secret: secret.map(str::to_string),
        ..Device::default()
    }
}

impl Registry {
    /// The demo registry shared with the product's default manifest (see `demo-registry.toml`).
    pub fn demo() -> Self {
        Registry {
            products: vec![
                Product {
                    name: "nrf-demo".into(),
                    product_key: "a1NrfDemo01".into(),
                    product_secret: "DemoPrdSecret016".into(),
                    dynamic_registration: false,
                    allow_unregistered: false,
                    mqtt5_sticky: false,
                    topics: demo_topics(),
                    devices: vec![
                        device("nrf9160-dk-01", Some("DemoDeviceSecretForEmulator00001")),
                        device("nrf9160-dk-02", Some("DemoDeviceSecretForEmulator00002")),
                    ],
                },
                Product {
                    name: "nrf-dynreg".into(),
                    product_key: "a1NrfDynReg".into(),
                    product_secret: "DynRegPrdSecret1".into(),
                    dynamic_registration: true,
                    allow_unregistered: true,
                    mqtt5_sticky: false,
                    topics: demo_topics(),
                    devices: vec![device("dyn-dev-01", None), device("dyn-dev-02", None)],
                },
            ],
        }
    }

    /// Parses a registry from TOML text; every error names what is wrong.
    pub fn from_toml_str(s: &str) -> Result<Self, EmulatorError> {
        let reg: Registry =
            toml::from_str(s).map_err(|e| EmulatorError::Registry(e.to_string()))?;
        reg.validate()?;
        Ok(reg)
    }

    /// Reads and parses a registry TOML file.
    pub fn from_file(p: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| EmulatorError::Registry(format!("{}: {e}", p.display())))?;
        Self::from_toml_str(&text)
    }

    /// Checks keys and names are present and unique.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let mut pks = std::collections::HashSet::new();
        for p in &self.products {
            if p.product_key.is_empty() {
                return Err(EmulatorError::Registry(
                    "product with empty product_key".into(),
                ));
            }
            if !pks.insert(p.product_key.as_str()) {
                return Err(EmulatorError::Registry(format!(
                    "product_key {} is listed twice",
                    p.product_key
                )));
            }
            let mut names = std::collections::HashSet::new();
            for d in &p.devices {
                if d.name.is_empty() || !names.insert(d.name.as_str()) {
                    return Err(EmulatorError::Registry(format!(
                        "product {}: device name {:?} is empty or listed twice",
                        p.product_key, d.name
                    )));
                }
            }
            for t in &p.topics {
                if t.name.is_empty() || t.name.split('/').any(str::is_empty) {
                    return Err(EmulatorError::Registry(format!(
                        "product {}: topic category {:?} has an empty level",
                        p.product_key, t.name
                    )));
                }
                if t.rights.can_publish() && (t.name.contains('+') || t.name.contains('#')) {
                    return Err(EmulatorError::Registry(format!(
                        "product {}: topic category {:?}: wildcards only in Subscribe categories",
                        p.product_key, t.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The product with ProductKey `pk`.
    pub fn product(&self, pk: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.product_key == pk)
    }

    /// Mutable access to the product with ProductKey `pk`.
    pub fn product_mut(&mut self, pk: &str) -> Option<&mut Product> {
        self.products.iter_mut().find(|p| p.product_key == pk)
    }

    /// The device `dn` of product `pk`.
    pub fn device(&self, pk: &str, dn: &str) -> Option<&Device> {
        self.product(pk).and_then(|p| p.device(dn))
    }

    /// Mutable access to the device `dn` of product `pk`.
    pub fn device_mut(&mut self, pk: &str, dn: &str) -> Option<&mut Device> {
        self.product_mut(pk).and_then(|p| p.device_mut(dn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_toml_matches_demo() {
        let text = include_str!("../demo-registry.toml");
        let reg = Registry::from_toml_str(text).expect("demo-registry.toml parses");
        let demo = Registry::demo();
        assert_eq!(
            serde_json::to_value(&reg).expect("json"),
            serde_json::to_value(&demo).expect("json")
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = Registry::from_toml_str("[[product]]\nproduct_key='x'\nbogus=1\n");
        assert!(matches!(err, Err(EmulatorError::Registry(m)) if m.contains("bogus")));
    }

    #[test]
    fn duplicate_device_is_rejected() {
        let t = "[[product]]\nproduct_key='x'\n[[product.device]]\nname='a'\n[[product.device]]\nname='a'\n";
        assert!(Registry::from_toml_str(t).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", Registry::demo());
        assert!(!s.contains("DemoDeviceSecretForEmulator00001"));
        assert!(!s.contains("DemoPrdSecret016"));
    }
}
