//! The spec's login and registration vectors (V1-V7, `tests/data/vectors.json`, a copy of
//! `shared/spec/vectors.json`) through the emulator's login checker.

use aliot_emulator::auth::{Accepted, ConnectRequest, RefuseCode, authorize};
use aliot_emulator::{Device, Product, Registry};

fn vectors() -> Vec<serde_json::Value> {
    let text = include_str!("data/vectors.json");
    let v: serde_json::Value = serde_json::from_str(text).expect("vectors.json parses");
    v["vectors"].as_array().expect("vectors array").clone()
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} in {v}"))
}

fn registry(pk: &str, dn: &str, ds: Option<&str>, ps: &str) -> Registry {
    Registry {
        products: vec![Product {
            name: "vec".into(),
            product_key: pk.into(),
            product_secret: ps.into(),
            dynamic_registration: true,
            allow_unregistered: true,
            mqtt5_sticky: false,
            topics: vec![],
            devices: vec![Device {
                name: dn.into(),
                secret: ds.map(Into::into),
                ..Device::default()
            }],
        }],
    }
}

fn req(client_id: String, user: String, password: &str, tls: bool) -> ConnectRequest {
    ConnectRequest {
        client_id,
        username: Some(user),
        password: Some(password.as_bytes().to_vec()),
        keep_alive: 300,
        has_will: false,
        mqtt_version: 4,
        tls,
    }
}

/// Flips the last hex digit, so the password is wrong.
fn corrupt(pw: &str) -> String {
    let mut p = pw.to_string();
    let last = p.pop().expect("non-empty");
    p.push(if last == '0' { '1' } else { '0' });
    p
}

#[test]
fn login_vectors_pass_the_checker() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "login") {
        let (pk, dn) = (s(v, "product_key"), s(v, "device_name"));
        let cid = format!(
            "{}|securemode=3,signmethod={},timestamp={}|",
            s(v, "client_id"),
            s(v, "signmethod"),
            s(v, "timestamp")
        );
        let user = format!("{dn}&{pk}");
        for pw in [
            s(v, "password").to_string(),
            s(v, "password").to_lowercase(),
        ] {
            let mut reg = registry(pk, dn, Some(s(v, "device_secret")), "");
            let r = authorize(
                &mut reg,
                &req(cid.clone(), user.clone(), &pw, false),
                &mut || "x".into(),
            );
            assert_eq!(
                r,
                Ok(Accepted::Device {
                    pk: pk.into(),
                    dn: dn.into(),
                    token_login: false
                }),
                "{}",
                s(v, "id")
            );
        }
        let mut reg = registry(pk, dn, Some(s(v, "device_secret")), "");
        let bad = corrupt(s(v, "password"));
        let r = authorize(&mut reg, &req(cid, user, &bad, false), &mut || "x".into());
        assert_eq!(
            r.map_err(|e| e.code),
            Err(RefuseCode::BadCredentials),
            "{}",
            s(v, "id")
        );
        n += 1;
    }
    assert!(n >= 7, "expected the V1-V5 login vectors, got {n}");
}

#[test]
fn registration_vectors_pass_the_checker() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "register") {
        let (pk, dn) = (s(v, "product_key"), s(v, "device_name"));
        let cid = format!(
            "{pk}.{dn}|securemode=2,authType=register,random={},signmethod={}|",
            s(v, "random"),
            s(v, "signmethod")
        );
        let user = format!("{dn}&{pk}");
        let mut reg = registry(pk, dn, None, s(v, "product_secret"));
        let r = authorize(
            &mut reg,
            &req(cid.clone(), user.clone(), s(v, "password"), true),
            &mut || "NewSecret".into(),
        );
        match r {
            Ok(Accepted::Registration { topic, payload, .. }) => {
                assert_eq!(topic, "/ext/register");
                let p: serde_json::Value = serde_json::from_str(&payload).expect("json");
                assert_eq!(p["deviceSecret"], "NewSecret");
                assert_eq!(p["productKey"], pk);
                assert_eq!(p["deviceName"], dn);
            }
            other => panic!("{}: {other:?}", s(v, "id")),
        }
        let mut reg = registry(pk, dn, None, s(v, "product_secret"));
        let bad = corrupt(s(v, "password"));
        let r = authorize(&mut reg, &req(cid, user, &bad, true), &mut || "x".into());
        assert_eq!(
            r.map_err(|e| e.code),
            Err(RefuseCode::BadCredentials),
            "{}",
            s(v, "id")
        );
        n += 1;
    }
    assert_eq!(n, 2, "V6 and V7");
}
