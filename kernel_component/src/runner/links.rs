//! How the runner makes a link for a fresh stream: by default the MQTT version the manifest
//! names ([`MqttLinks`]); tests put a scripted link in its place ([`LinkFactory`]).

use embedded_io_async::{Read, Write};

use crate::config::MqttVersion;
use crate::link::v5::V5Link;
use crate::link::v311::V311Link;
use crate::link::{ConnectParams, Incoming, LinkError, MqttLink, Outgoing, Sent};

/// Makes the MQTT link for each new stream.
pub trait LinkFactory<S> {
    /// The link made.
    type Link: MqttLink;
    /// A link speaking `version` over `stream`, nothing sent yet.
    fn link(&mut self, stream: S, version: MqttVersion) -> Self::Link;
}

/// The product's links: [`V311Link`] or [`V5Link`], as the configuration says.
#[derive(Debug, Clone, Copy, Default)]
pub struct MqttLinks;

impl<S: Read + Write> LinkFactory<S> for MqttLinks {
    type Link = AnyLink<S>;

    fn link(&mut self, stream: S, version: MqttVersion) -> AnyLink<S> {
        match version {
            MqttVersion::V311 => AnyLink::V311(V311Link::new(stream)),
            MqttVersion::V5 => AnyLink::V5(V5Link::new(stream)),
        }
    }
}

/// Either link, so one runner serves both versions.
// One lives at a time, inside the runner's future: boxing the larger one would only add an
// allocation per connection.
#[allow(clippy::large_enum_variant)]
pub enum AnyLink<S> {
    /// MQTT 3.1.1.
    V311(V311Link<S>),
    /// MQTT 5.
    V5(V5Link<S>),
}

impl<S: Read + Write> MqttLink for AnyLink<S> {
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        match self {
            AnyLink::V311(l) => l.connect(params).await,
            AnyLink::V5(l) => l.connect(params).await,
        }
    }

    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError> {
        match self {
            AnyLink::V311(l) => l.send(packet).await,
            AnyLink::V5(l) => l.send(packet).await,
        }
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        match self {
            AnyLink::V311(l) => l.ping().await,
            AnyLink::V5(l) => l.ping().await,
        }
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        match self {
            AnyLink::V311(l) => l.ready().await,
            AnyLink::V5(l) => l.ready().await,
        }
    }

    fn partial(&self) -> bool {
        match self {
            AnyLink::V311(l) => l.partial(),
            AnyLink::V5(l) => l.partial(),
        }
    }

    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError> {
        match self {
            AnyLink::V311(l) => l.receive().await,
            AnyLink::V5(l) => l.receive().await,
        }
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        match self {
            AnyLink::V311(l) => l.acknowledge(pid).await,
            AnyLink::V5(l) => l.acknowledge(pid).await,
        }
    }

    async fn disconnect(&mut self) {
        match self {
            AnyLink::V311(l) => l.disconnect().await,
            AnyLink::V5(l) => l.disconnect().await,
        }
    }

    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        match self {
            AnyLink::V311(l) => l.negotiated_keepalive_secs(),
            AnyLink::V5(l) => l.negotiated_keepalive_secs(),
        }
    }

    fn oversized_dropped(&self) -> u32 {
        match self {
            AnyLink::V311(l) => l.oversized_dropped(),
            AnyLink::V5(l) => l.oversized_dropped(),
        }
    }
}
