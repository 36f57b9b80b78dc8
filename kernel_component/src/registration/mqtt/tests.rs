use super::*;
use crate::config::{RegistrationConfig, RegistrationTransport, SignMethod, TEST_CONFIG};

/// Spec §6.2 V5/V6: the IOTKIT example product, pre-registered device.
const V6: DeviceConfig = DeviceConfig {
    product_key: "a1X2bEnP82z",
    device_name: "example1",
    client_id: "a1X2bEnP82z.example1",
    auth: AuthMode::ProductSecretRegister,
    sign_method: SignMethod::HmacSha256,
    ..TEST_CONFIG
};

fn with_instance(config: DeviceConfig, id: &'static str) -> DeviceConfig {
    DeviceConfig {
        registration: RegistrationConfig {
            instance_id: Some(id),
            transport: RegistrationTransport::Mqtt,
            ..config.registration
        },
        ..config
    }
}

#[test]
fn register_on_an_old_public_instance_matches_vector_v6() {
    let login = registration_login(&V6, b"7jluWm1zql7bt8qK", "8Ygb7ULYh53B6OA").unwrap();
    assert_eq!(
        login.client_id,
        "a1X2bEnP82z.example1|securemode=2,authType=register,random=8Ygb7ULYh53B6OA,signmethod=hmacsha256|"
    );
    assert_eq!(login.username, "example1&a1X2bEnP82z");
    assert_eq!(
        login.password,
        "37C9D9C4DCAB7FC75D65D25547A4E11080E59DD82F3255AAFC90D83498480E88"
    );
}

#[test]
fn luatos_style_md5_registration_matches_vector_v7() {
    let config = DeviceConfig {
        sign_method: SignMethod::HmacMd5,
        ..V6
    };
    let login = registration_login(&config, b"7jluWm1zql7bt8qK", "123").unwrap();
    assert_eq!(login.password, "F02D626CFF0C3DA34B0878DEF7724949");
    assert!(login.client_id.contains(",signmethod=hmacmd5|"));
}

#[test]
fn instances_and_regnwl_use_securemode_minus_2_and_name_the_instance() {
    let on_instance = with_instance(V6, "iot-06z00ab");
    let login = registration_login(&on_instance, b"ps", "42").unwrap();
    assert_eq!(
        login.client_id,
        "a1X2bEnP82z.example1|securemode=-2,authType=register,random=42,signmethod=hmacsha256,instanceId=iot-06z00ab|"
    );
    let regnwl = DeviceConfig {
        auth: AuthMode::ProductSecretNoPreRegister,
        ..V6
    };
    let login = registration_login(&regnwl, b"ps", "42").unwrap();
    assert_eq!(
        login.client_id,
        "a1X2bEnP82z.example1|securemode=-2,authType=regnwl,random=42,signmethod=hmacsha256|"
    );
    let login = registration_login(&with_instance(regnwl, "iot-1"), b"ps", "42").unwrap();
    assert!(login.client_id.ends_with(",instanceId=iot-1|"), "{login:?}");
    // The sign content does not depend on the instance or auth type.
    assert_eq!(
        login.password,
        hmac_hex(
            SignMethod::HmacSha256,
            b"ps",
            b"deviceNameexample1productKeya1X2bEnP82zrandom42"
        )
    );
    let device_secret = DeviceConfig {
        auth: AuthMode::DeviceSecret,
        ..V6
    };
    assert!(registration_login(&device_secret, b"ps", "1").is_none());
}

#[test]
fn token_login_is_the_documented_connwl_form() {
    let login = token_login(&V6, "example1.Xy7", &Secret::new(b"tok3n".to_vec()));
    assert_eq!(
        login.client_id,
        "example1.Xy7|securemode=-2,authType=connwl|"
    );
    assert_eq!(login.username, "example1&a1X2bEnP82z");
    assert_eq!(login.password, "tok3n");
}

#[test]
fn refusals_are_classified() {
    assert_eq!(
        classify_refusal(Refusal::BadCredentials),
        RegistrationError::BadProductSecret
    );
    assert_eq!(
        classify_refusal(Refusal::IdentifierRejected),
        RegistrationError::UnknownDevice
    );
    assert_eq!(
        classify_refusal(Refusal::NotAuthorized),
        RegistrationError::AlreadyActivated
    );
    assert_eq!(
        classify_refusal(Refusal::Other(0x99)),
        RegistrationError::Refused(0x99)
    );
}

fn secret_of(issued: Issued) -> alloc::vec::Vec<u8> {
    match issued {
        Issued::DeviceSecret(s) => s.expose().to_vec(),
        Issued::Token { .. } => panic!("a token"),
    }
}

#[test]
fn register_answer_is_read_tolerantly() {
    let issued = parse_answer(
        &V6,
        br#"{"productKey":"a1X2bEnP82z","deviceName":"example1","deviceSecret":"S3cr3t","extra":{"a":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(secret_of(issued), b"S3cr3t");
    // productKey and deviceName may be missing (LINKSDK reads only deviceSecret).
    let issued = parse_answer(&V6, br#"{"deviceSecret":"x1"}"#).unwrap();
    assert_eq!(secret_of(issued), b"x1");
}

#[test]
fn regnwl_answer_gives_client_id_and_token() {
    let config = DeviceConfig {
        auth: AuthMode::ProductSecretNoPreRegister,
        ..V6
    };
    let issued = parse_answer(
        &config,
        br#"{"clientId":"example1.abc","productKey":"a1X2bEnP82z","deviceName":"example1","deviceToken":"T0k"}"#,
    )
    .unwrap();
    match issued {
        Issued::Token { client_id, token } => {
            assert_eq!(client_id, "example1.abc");
            assert_eq!(token.expose(), b"T0k");
        }
        Issued::DeviceSecret(_) => panic!("a secret"),
    }
}

#[test]
fn bad_answers_are_refused() {
    let regnwl = DeviceConfig {
        auth: AuthMode::ProductSecretNoPreRegister,
        ..V6
    };
    let long = alloc::format!(r#"{{"deviceSecret":"{}"}}"#, "x".repeat(MAX_ISSUED_LEN + 1));
    for (config, payload) in [
        (&V6, &b"not json"[..]),
        (&V6, br#"{"deviceSecret":""}"#),
        (&V6, br#"{"productKey":"a1X2bEnP82z"}"#),
        (&V6, br#"{"deviceName":"other","deviceSecret":"s"}"#),
        (&V6, br#"{"productKey":"other","deviceSecret":"s"}"#),
        (&V6, br#"{"deviceSecret":5}"#),
        (&V6, br#"{"deviceSecret":"s\u0041"}"#),
        (&V6, br#"{"deviceSecret":"s","deviceSecret":"t"}"#),
        (&V6, br#"{"deviceSecret":"s"} trailing"#),
        (&V6, b"{\"deviceSecret\":\"\xff\"}"),
        (&V6, long.as_bytes()),
        (&regnwl, br#"{"deviceToken":"t"}"#),
        (&regnwl, br#"{"clientId":"c","deviceSecret":"s"}"#),
        (&regnwl, br#"{"clientId":"a|b","deviceToken":"t"}"#),
        (&regnwl, br#"{"clientId":"a,b","deviceToken":"t"}"#),
    ] {
        assert!(
            matches!(
                parse_answer(config, payload),
                Err(RegistrationError::BadReply)
            ),
            "{:?}",
            core::str::from_utf8(payload)
        );
    }
    assert!(is_answer(AuthMode::ProductSecretRegister, "/ext/register"));
    assert!(!is_answer(AuthMode::ProductSecretRegister, "/ext/regnwl"));
    assert!(is_answer(
        AuthMode::ProductSecretNoPreRegister,
        "/ext/regnwl"
    ));
}
