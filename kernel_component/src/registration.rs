//! 一型一密 dynamic registration (spec §2): the ProductSecret buys this device its own
//! login material once, which is stored power-fail-safe ([`crate::store`]) before it is used.
//!
//! [`mqtt`] builds the registration CONNECT and reads the pushed answer.

// The HTTP plumbing here also carries the OTA download.
#[cfg(any(feature = "register-https", feature = "ota"))]
pub mod https;

use alloc::string::String;

use crate::board::NetError;
use crate::credentials::Secret;
use crate::link::LinkError;

/// What a registration issued (spec §2.1, §2.2).
pub enum Issued {
    /// Pre-registered device (`register`, MQTT or HTTPS): its DeviceSecret, for 一机一密-style
    /// signed logins from now on.
    DeviceSecret(Secret),
    /// Not pre-registered (`regnwl`): the clientId to log in with and the device token (the
    /// `authType=connwl` password).
    Token {
        /// The MQTT client id (before the `|`) the platform assigned.
        client_id: String,
        /// The device token.
        token: Secret,
    },
}

/// Login material for one device, as stored: what was issued, and to whom.
pub struct StoredCredentials {
    /// ProductKey the material belongs to.
    pub product_key: String,
    /// DeviceName the material belongs to.
    pub device_name: String,
    /// The secret or token.
    pub issued: Issued,
}

/// Why a registration attempt failed. Each has its own message, because each asks the user
/// for something different.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationError {
    /// The platform refuses to register a device that has already logged in (activated):
    /// someone must reset the device's registration in the console (ResetThing).
    AlreadyActivated,
    /// The registration signature was refused: wrong ProductSecret (or unknown ProductKey).
    BadProductSecret,
    /// The device is not known to the product (not pre-registered, for `register`), or its
    /// name is not accepted.
    UnknownDevice,
    /// Refused for a reason not classified above (the code as received: a CONNACK return
    /// code, or an HTTPS answer's `code`).
    Refused(u32),
    /// The stream could not be opened.
    Net(NetError),
    /// The MQTT link failed (other than a refused CONNECT, which is classified above).
    Link(LinkError),
    /// No answer (stream, CONNACK, pushed message or HTTP response) within the deadline.
    Timeout,
    /// The answer could not be understood, was too large, or named another device.
    BadReply,
    /// The credentials could not be stored, or did not read back equal.
    Storage,
}

pub mod mqtt;
