//! Dynamic registration over MQTT (register / regnwl, TLS only) and HTTPS, and token login.

mod common;

use aliot_emulator::sign::{SignMethod, hmac_hex, register_sign_content};
use aliot_emulator::{Emulator, EmulatorConfig};
use common::*;

const DPK: &str = "a1NrfDynReg";
const DPS: &str = "DynRegPrdSecret1";

fn reg_creds(
    dn: &str,
    auth_type: &str,
    securemode: &str,
    method: SignMethod,
    upper: bool,
) -> Creds {
    let random = "8Ygb7ULYh53B6OA";
    let pw = hmac_hex(
        method,
        DPS.as_bytes(),
        register_sign_content(dn, DPK, random).as_bytes(),
    );
    Creds {
        client_id: format!(
            "{dn}.{DPK}|random={random},authType={auth_type},securemode={securemode},signmethod={}|",
            method.name()
        ),
        username: format!("{dn}&{DPK}"),
        password: if upper { pw } else { pw.to_lowercase() },
        keep_alive: 5, // registration connects are exempt from the keep-alive range
    }
}

/// Runs a registration connect and returns the pushed (topic, JSON) without subscribing.
fn register(emu: &Emulator, v: u8, c: &Creds) -> Result<(String, serde_json::Value), String> {
    let cl = TestClient::connect(
        v,
        emu.tls_addr().port(),
        c,
        Some(client_tls(emu.ca_pem_path(), false)),
    );
    cl.connack()?;
    match cl.wait(|e| matches!(e, Ev::Publish { .. })) {
        Some(Ev::Publish { topic, payload, .. }) => {
            let v = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
            // the server closes after the push
            assert!(
                cl.wait_closed().is_some(),
                "server closes the registration connection"
            );
            Ok((topic, v))
        }
        other => Err(format!("no push: {other:?}")),
    }
}

#[test]
fn register_issues_a_new_secret_each_time_until_login() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let dn = "dyn-dev-01";
    let (t1, p1) = register(
        &emu,
        4,
        &reg_creds(dn, "register", "2", SignMethod::HmacSha256, true),
    )
    .expect("reg 1");
    assert_eq!(t1, "/ext/register");
    assert_eq!(p1["productKey"], DPK);
    assert_eq!(p1["deviceName"], dn);
    let s1 = p1["deviceSecret"].as_str().expect("secret").to_string();
    // again (LuatOS style: -2, hmacmd5, lowercase), MQTT 5: a new secret, only the last valid
    let (_, p2) = register(
        &emu,
        5,
        &reg_creds(dn, "register", "-2", SignMethod::HmacMd5, false),
    )
    .expect("reg 2");
    let s2 = p2["deviceSecret"].as_str().expect("secret").to_string();
    assert_ne!(s1, s2);
    assert_eq!(emu.device_secret(DPK, dn).as_deref(), Some(s2.as_str()));
    let old = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(DPK, dn, &s1), None);
    assert_eq!(old.connack(), Err("BadUserNamePassword".into()));
    let new = TestClient::connect(4, emu.mqtt_addr().port(), &sdk_creds(DPK, dn, &s2), None);
    assert_eq!(new.connack(), Ok(()));
    new.disconnect();
    // activated: registration refused until reset
    let r = register(
        &emu,
        4,
        &reg_creds(dn, "register", "2", SignMethod::HmacSha256, true),
    );
    assert!(r.is_err(), "{r:?}");
    emu.reset_registration(DPK, dn).expect("reset");
    let (_, p3) = register(
        &emu,
        4,
        &reg_creds(dn, "register", "2", SignMethod::HmacSha256, true),
    )
    .expect("after reset");
    assert!(p3["deviceSecret"].as_str().is_some());
}

#[test]
fn registration_refused_over_plain_tcp_and_with_bad_sign() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let c = reg_creds("dyn-dev-02", "register", "2", SignMethod::HmacSha256, true);
    let plain = TestClient::connect(4, emu.mqtt_addr().port(), &c, None);
    assert_eq!(plain.connack(), Err("NotAuthorized".into()));
    let mut bad = c.clone();
    bad.password = bad.password.replace('A', "B").replace('1', "2");
    assert_eq!(register(&emu, 4, &bad), Err("BadUserNamePassword".into()));
    // a device the product does not know: identifier rejected (code 2), told apart from a
    // bad signature (the device reports each differently)
    let unknown = reg_creds("no-such-dev", "register", "2", SignMethod::HmacSha256, true);
    assert_eq!(register(&emu, 4, &unknown), Err("BadClientId".into()));
    // a product with dynamic registration off
    let pw = hmac_hex(
        SignMethod::HmacSha256,
        b"DemoPrdSecret016",
        register_sign_content(DN, PK, "1").as_bytes(),
    );
    let off = Creds {
        client_id: "x|random=1,authType=register,securemode=2,signmethod=hmacsha256|".to_string(),
        username: format!("{DN}&{PK}"),
        password: pw,
        keep_alive: 60,
    };
    assert_eq!(register(&emu, 4, &off), Err("NotAuthorized".into()));
    assert!(emu.logins(DPK, "dyn-dev-02").iter().all(|l| !l.accepted));
}

#[test]
fn regnwl_then_token_login() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let dn = "brand-new-device";
    let (topic, p) = register(
        &emu,
        4,
        &reg_creds(dn, "regnwl", "-2", SignMethod::HmacSha256, true),
    )
    .expect("regnwl");
    assert_eq!(topic, "/ext/regnwl");
    let cid = p["clientId"].as_str().expect("clientId").to_string();
    let token = p["deviceToken"].as_str().expect("token").to_string();
    assert_eq!(p["deviceName"], dn);
    let c = Creds {
        client_id: format!("{cid}|securemode=-2,authType=connwl|"),
        username: format!("{dn}&{DPK}"),
        password: token.clone(),
        keep_alive: 300,
    };
    let cl = TestClient::connect(5, emu.mqtt_addr().port(), &c, None);
    assert_eq!(cl.connack(), Ok(()));
    assert!(emu.wait_online(DPK, dn, WAIT));
    let mut wrong = c.clone();
    wrong.password = format!("{token}x");
    assert_eq!(
        TestClient::connect(4, emu.mqtt_addr().port(), &wrong, None).connack(),
        Err("BadUserNamePassword".into())
    );
    // invalid new name
    assert!(
        register(
            &emu,
            4,
            &reg_creds("bad name", "regnwl", "-2", SignMethod::HmacSha256, true)
        )
        .is_err()
    );
}

#[test]
fn https_registration() {
    let emu = Emulator::start(EmulatorConfig::demo()).expect("start");
    let agent = http_agent(Some(emu.ca_pem_path()));
    let url = format!(
        "https://localhost:{}/auth/register/device",
        emu.https_addr().port()
    );
    let form = |dn: &str, random: &str, method: SignMethod, method_name: &str, secret: &str| {
        let sign = hmac_hex(
            method,
            secret.as_bytes(),
            register_sign_content(dn, DPK, random).as_bytes(),
        );
        format!(
            "productKey={DPK}&deviceName={dn}&random={random}&sign={sign}&signMethod={method_name}"
        )
    };
    let post = |body: String| {
        let mut r = agent
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body)
            .expect("request");
        assert_eq!(r.status().as_u16(), 200);
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
        v
    };
    let v = post(form(
        "dyn-dev-02",
        "123",
        SignMethod::HmacMd5,
        "HmacMD5",
        DPS,
    ));
    assert_eq!(v["code"], 200, "{v}");
    assert_eq!(v["message"], "success");
    assert_eq!(v["data"]["productKey"], DPK);
    let secret = v["data"]["deviceSecret"]
        .as_str()
        .expect("secret")
        .to_string();
    let cl = TestClient::connect(
        4,
        emu.mqtt_addr().port(),
        &sdk_creds(DPK, "dyn-dev-02", &secret),
        None,
    );
    assert_eq!(cl.connack(), Ok(()));
    // activated now
    let v = post(form(
        "dyn-dev-02",
        "124",
        SignMethod::HmacSha256,
        "hmacsha256",
        DPS,
    ));
    assert_eq!(v["code"], 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("already activated"),
        "{v}"
    );
    // bad sign, and not pre-registered
    let v = post(form(
        "dyn-dev-01",
        "1",
        SignMethod::HmacSha256,
        "hmacsha256",
        "wrong",
    ));
    assert_eq!(v["code"], 401, "{v}");
    let v = post(form(
        "not-registered",
        "1",
        SignMethod::HmacSha256,
        "hmacsha256",
        DPS,
    ));
    assert_eq!(v["code"], 404, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    // plain HTTP is not the registration endpoint
    let plain = http_agent(None);
    let mut r = plain
        .post(format!("http://{}/auth/register/device", emu.http_addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form(
            "dyn-dev-01",
            "1",
            SignMethod::HmacSha256,
            "hmacsha256",
            DPS,
        ))
        .expect("request");
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    assert_ne!(v["code"], 200);
}
