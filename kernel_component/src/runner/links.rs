//! How the runner makes a link for a fresh stream: by default the MQTT version the manifest
//! names ([`MqttLinks`]); tests put a scripted link in its place ([`LinkFactory`]).

use embedded_io_async::{Read, Write};

use crate::config::MqttVersion;
#[cfg(feature = "mqtt-v5")]
use crate::link::v5::V5Link;
#[cfg(feature = "mqtt-v311")]
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
            #[cfg(feature = "mqtt-v311")]
            MqttVersion::V311 => AnyLink::V311(V311Link::new(stream)),
            #[cfg(feature = "mqtt-v5")]
            MqttVersion::V5 => AnyLink::V5(V5Link::new(stream)),
            // The runner refuses such a configuration before it connects
            // (`crate::features::missing`); a caller that gets here anyway gets a link that
            // fails every call, never the other version.
            #[allow(unreachable_patterns)]
            _ => AnyLink::CompiledOut(stream),
        }
    }
}

/// Either link, so one runner serves both versions.
// One lives at a time, inside the runner's future: boxing the larger one would only add an
// allocation per connection.
#[allow(clippy::large_enum_variant)]
pub enum AnyLink<S> {
    /// MQTT 3.1.1.
    #[cfg(feature = "mqtt-v311")]
    V311(V311Link<S>),
    /// MQTT 5.
    #[cfg(feature = "mqtt-v5")]
    V5(V5Link<S>),
    /// The version asked for is compiled out (feature `mqtt-v311` or `mqtt-v5`): every call
    /// fails with [`LinkError::Protocol`] (the runner never makes one: see `features::missing`).
    CompiledOut(S),
}

impl<S: Read + Write> MqttLink for AnyLink<S> {
    async fn connect(&mut self, params: &ConnectParams<'_>) -> Result<(), LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.connect(params).await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.connect(params).await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    async fn send(&mut self, packet: &Outgoing<'_>) -> Result<Sent, LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.send(packet).await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.send(packet).await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    async fn ping(&mut self) -> Result<(), LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.ping().await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.ping().await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    async fn ready(&mut self) -> Result<(), LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.ready().await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.ready().await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    fn partial(&self) -> bool {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.partial(),
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.partial(),
            AnyLink::CompiledOut(_) => false,
        }
    }

    async fn receive(&mut self) -> Result<Incoming<'_>, LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.receive().await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.receive().await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    async fn acknowledge(&mut self, pid: u16) -> Result<(), LinkError> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.acknowledge(pid).await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.acknowledge(pid).await,
            AnyLink::CompiledOut(_) => Err(LinkError::Protocol),
        }
    }

    async fn disconnect(&mut self) {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.disconnect().await,
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.disconnect().await,
            AnyLink::CompiledOut(_) => {}
        }
    }

    fn negotiated_keepalive_secs(&self) -> Option<u16> {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.negotiated_keepalive_secs(),
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.negotiated_keepalive_secs(),
            AnyLink::CompiledOut(_) => None,
        }
    }

    fn oversized_dropped(&self) -> u32 {
        match self {
            #[cfg(feature = "mqtt-v311")]
            AnyLink::V311(l) => l.oversized_dropped(),
            #[cfg(feature = "mqtt-v5")]
            AnyLink::V5(l) => l.oversized_dropped(),
            AnyLink::CompiledOut(_) => 0,
        }
    }
}
