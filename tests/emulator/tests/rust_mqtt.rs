//! Interop with rust-mqtt 0.6 (the MQTT 5 client the device side uses): login, subscribe,
//! QoS 1 publish both ways.

mod common;

use std::num::NonZero;

use aliot_emulator::{Emulator, EmulatorConfig};
use common::*;
use embedded_io_adapters::tokio_1::FromTokio;
use rust_mqtt::Bytes;
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    ConnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{MqttBinary, MqttString, TopicFilter, TopicName};

#[test]
fn rust_mqtt_v5_client_round_trip() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let addr = emu.mqtt_addr();
    let creds = sdk_creds(PK, DN, DS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let get = format!("/{PK}/{DN}/user/get");
    let update = format!("/{PK}/{DN}/user/update");
    rt.block_on(async {
        let mut buffer = AllocBuffer;
        let mut client = Client::<'_, '_, _, _, 1, 1, 1, 1, 16, 0, 1>::new(&mut buffer);
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let cid = MqttString::try_from(creds.client_id.as_str()).expect("cid");
        let opts = ConnectOptions::new()
            .clean_start()
            .keep_alive(KeepAlive::Seconds(NonZero::new(300).expect("ka")))
            .user_name(MqttString::try_from(creds.username.as_str()).expect("user"))
            .password(MqttBinary::try_from(creds.password.as_str()).expect("pw"));
        let connect =
            tokio::time::timeout(WAIT, client.connect(FromTokio::new(tcp), &opts, Some(cid))).await;
        assert!(matches!(connect, Ok(Ok(_))), "connect: {connect:?}");

        let filter_s = MqttString::try_from(get.as_str()).expect("s");
        let filter = TopicFilter::new(filter_s.as_borrowed()).expect("filter");
        client
            .subscribe(filter, &SubscriptionOptions::new().at_least_once())
            .await
            .expect("subscribe");
        let ev = tokio::time::timeout(WAIT, client.poll())
            .await
            .expect("suback in time")
            .expect("poll");
        assert!(matches!(ev, Event::Suback(_)), "{ev:?}");

        let name_s = MqttString::try_from(update.as_str()).expect("s");
        let name = TopicName::new(name_s.as_borrowed()).expect("name");
        let po = PublicationOptions::new(TopicReference::Name(name)).at_least_once();
        client
            .publish(&po, Bytes::from(&b"from-rust-mqtt"[..]))
            .await
            .expect("publish");
        let ev = tokio::time::timeout(WAIT, client.poll())
            .await
            .expect("puback in time")
            .expect("poll");
        assert!(matches!(ev, Event::PublishAcknowledged(_)), "{ev:?}");

        assert!(emu.wait_subscribed(PK, DN, &get, WAIT));
        emu.publish_to_device(PK, DN, &get, b"to-rust-mqtt", 1)
            .expect("downlink");
        let ev = tokio::time::timeout(WAIT, client.poll())
            .await
            .expect("publish in time")
            .expect("poll");
        match ev {
            Event::Publish(p) => assert_eq!(&*p.message, b"to-rust-mqtt"),
            other => panic!("expected a PUBLISH, got {other:?}"),
        }
    });
    let up = emu
        .wait_for_uplink(PK, DN, WAIT, |u| u.payload == b"from-rust-mqtt")
        .expect("uplink");
    assert_eq!(up.qos, 1);
    assert!(up.refused.is_none());
    assert_eq!(emu.logins(PK, DN)[0].mqtt_version, 5);
}
