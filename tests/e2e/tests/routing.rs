//! Messages reach exactly the apps that subscribed, and the manifest's grants are enforced
//! before anything reaches the network.

mod common;

use common::*;

#[test]
fn cloud_messages_reach_only_the_subscribed_app_mqtt311() {
    cloud_messages_reach_only_the_subscribed_app("3.1.1");
}

/// The MQTT 5 link acknowledges a QoS 1 downlink only once the kernel took it, through its own
/// packet-id table: the same routing must hold there.
#[test]
fn cloud_messages_reach_only_the_subscribed_app_mqtt5() {
    cloud_messages_reach_only_the_subscribed_app("5");
}

fn cloud_messages_reach_only_the_subscribed_app(mqtt_version: &'static str) {
    let emu = emulator();
    let device = Device::start(
        &emu,
        DeviceOptions {
            mqtt_version,
            ..DeviceOptions::default()
        },
    );
    assert!(
        wait_subscribed(&emu, &[topic("get"), topic("ceshi")]),
        "both apps subscribed: {:?}",
        emu.subscriptions(PK, DN)
    );

    emu.publish_to_device(PK, DN, &topic("ceshi"), b"ping1", 1)
        .unwrap();
    assert!(
        wait_uplink(&emu, &topic("update"), b"echo:ping1").is_some(),
        "echo answers what it subscribed to"
    );

    emu.publish_to_device(PK, DN, &topic("get"), b"for-publish-test", 1)
        .unwrap();
    assert!(
        device.wait_log("for-publish-test", WAIT),
        "publish_test logs the message on /user/get"
    );
    // A later message to echo proves echo has processed everything sent before it.
    emu.publish_to_device(PK, DN, &topic("ceshi"), b"ping2", 1)
        .unwrap();
    assert!(wait_uplink(&emu, &topic("update"), b"echo:ping2").is_some());
    assert!(
        !emu.uplinks(PK, DN)
            .iter()
            .any(|u| u.payload == b"echo:for-publish-test"),
        "echo must not receive /user/get"
    );
    let get_lines = device
        .log()
        .lines()
        .filter(|l| l.contains("for-publish-test"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(
        get_lines.iter().all(|l| l.contains("[app publish_test]")),
        "only publish_test saw it: {get_lines:?}"
    );
}

#[test]
fn a_topic_outside_the_grant_is_refused_by_the_kernel() {
    let emu = emulator();
    let _device = Device::start(&emu, DeviceOptions::default());
    assert!(
        wait_uplink(&emu, &topic("update/error"), b"acl:NotPermitted").is_some(),
        "echo reports the kernel's refusal: {:?}",
        emu.uplinks(PK, DN)
    );
    assert!(
        !emu.uplinks(PK, DN).iter().any(|u| u.topic == topic("get")),
        "the forbidden publish never reached the network"
    );
}
