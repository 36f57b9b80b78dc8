//! 一型一密 in the runner (spec §2.1): the registration phase on virtual time, with the real
//! [`RegisteredLogin`] over an in-memory storage that writes into the same [`Journal`] as the
//! network and the links, so the order of dial, CONNECT, store, DISCONNECT and login is
//! checked as it happened.
//!
//! Expected CONNECT strings and passwords are written out here from the spec (the HMAC itself
//! from [`hmac_hex`], which `auth.rs` checks against the official vectors), not taken from the
//! code that builds them.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::ToString;

use aliot_abi::{Event, Registration, RegistrationFailure};

use super::*;
use crate::auth::{FIXED_TIMESTAMP, hmac_hex, register_sign_content};
use crate::credentials::{CredentialStorage, RegisteredLogin};
use crate::registration::{Issued, StoredCredentials};

/// The ProductSecret of these tests, and secrets the platform issues; distinct from every
/// other string of the test binary so that the scans find only these.
const PS: &str = "Ps7kQ2productSecretNeverShownX9";
const DS: &str = "Ds3mV8issuedDeviceSecretNeverShownW1";
const DS2: &str = "Ds5pR4secondDeviceSecretNeverShownZ0";
const TOKEN: &str = "Tk9fH6deviceTokenNeverShownQ3";

const REGISTER_TOPIC: &str = "/ext/register";
const REGNWL_TOPIC: &str = "/ext/regnwl";

/// A pre-registered device on an old public instance (securemode 2); the session speaks MQTT
/// 5 over TLS, the registration 3.1.1.
static REGISTER: DeviceConfig = {
    let mut config = CONFIG;
    config.auth = AuthMode::ProductSecretRegister;
    config.tls.enabled = true;
    config.endpoint.port = 8883;
    config
};

/// The same device, not pre-registered.
static REGNWL: DeviceConfig = {
    let mut config = REGISTER;
    config.auth = AuthMode::ProductSecretNoPreRegister;
    config
};

// ---- an in-memory credential storage ------------------------------------------------------

/// What the storage holds, shared with the test.
#[derive(Default)]
struct Shelf {
    /// ProductKey, DeviceName, secret or token, client id (for a token).
    stored: Option<(String, String, String, Option<String>)>,
    /// How many of the next saves fail.
    failing_saves: u32,
}

type SharedShelf = Rc<RefCell<Shelf>>;

struct Memory {
    shelf: SharedShelf,
    time: Time,
    journal: Journal,
}

impl CredentialStorage for Memory {
    type Error = &'static str;

    async fn load(
        &mut self,
        product_key: &str,
        device_name: &str,
    ) -> Result<Option<StoredCredentials>, &'static str> {
        self.journal.borrow_mut().push((self.time.now(), Ev::Load));
        let shelf = self.shelf.borrow();
        let Some((pk, dn, secret, client_id)) = &shelf.stored else {
            return Ok(None);
        };
        if pk != product_key || dn != device_name {
            return Ok(None);
        }
        let secret = Secret::from(secret.clone());
        Ok(Some(StoredCredentials {
            product_key: pk.clone(),
            device_name: dn.clone(),
            issued: match client_id {
                None => Issued::DeviceSecret(secret),
                Some(client_id) => Issued::Token {
                    client_id: client_id.clone(),
                    token: secret,
                },
            },
        }))
    }

    async fn save(&mut self, creds: &StoredCredentials) -> Result<(), &'static str> {
        let (secret, client_id) = match &creds.issued {
            Issued::DeviceSecret(s) => (s.expose(), None),
            Issued::Token { client_id, token } => (token.expose(), Some(client_id.clone())),
        };
        let secret = String::from_utf8(secret.to_vec()).expect("UTF-8 secret");
        let mut shelf = self.shelf.borrow_mut();
        let ok = shelf.failing_saves == 0;
        if ok {
            shelf.stored = Some((
                creds.product_key.clone(),
                creds.device_name.clone(),
                secret.clone(),
                client_id.clone(),
            ));
        } else {
            shelf.failing_saves -= 1;
        }
        self.journal.borrow_mut().push((
            self.time.now(),
            Ev::Save {
                secret,
                client_id,
                ok,
            },
        ));
        if ok { Ok(()) } else { Err("flash worn out") }
    }
}

/// A 一型一密 provider with the ProductSecret [`PS`] over `shelf`, journaling into `world`'s.
fn provider(world: &World, shelf: &SharedShelf) -> RegisteredLogin<Memory> {
    let storage = Memory {
        shelf: shelf.clone(),
        time: world.time.clone(),
        journal: world.journal.clone(),
    };
    RegisteredLogin::new(Secret::from(PS.to_owned()), storage).expect("a ProductSecret")
}

/// A pre-registered 一型一密 device ([`REGISTER`]); tests may change the configuration.
fn registering(dials: Vec<Dial>, links: Vec<Script>) -> World {
    let mut world = World::new(dials, links);
    world.config = &REGISTER;
    world
}

/// Runs `world` as a 一型一密 device over `shelf`.
fn run_registering(world: World, shelf: &SharedShelf, limit: u64) -> Outcome {
    let credentials = provider(&world, shelf);
    world.run_with(credentials, limit)
}

// ---- scripted answers ---------------------------------------------------------------------

/// The registration link: CONNACK at once, then `incoming` (absolute times).
fn registration_link(incoming: Vec<(u64, In)>) -> Script {
    let script = LinkState::new(Login::Accept);
    script.borrow_mut().incoming.extend(incoming);
    script
}

/// A registration CONNECT refused with `refusal`.
fn refused(refusal: Refusal) -> Script {
    LinkState::new(Login::Refuse(LinkError::Refused(refusal)))
}

fn publish(topic: &'static str, payload: String, pid: Option<u16>) -> In {
    In::Publish {
        topic,
        payload: payload.leak().as_bytes(),
        pid,
    }
}

/// The `/ext/register` answer (spec §2.1) issuing `secret`, QoS 0.
fn register_answer(secret: &str) -> In {
    publish(
        REGISTER_TOPIC,
        format!(r#"{{"productKey":"pk","deviceName":"dn","deviceSecret":"{secret}"}}"#),
        None,
    )
}

/// The `/ext/regnwl` answer (spec §2.1) issuing `client_id` and [`TOKEN`].
fn regnwl_answer(client_id: &str) -> In {
    publish(
        REGNWL_TOPIC,
        format!(
            r#"{{"clientId":"{client_id}","productKey":"pk","deviceName":"dn","deviceToken":"{TOKEN}"}}"#
        ),
        None,
    )
}

// ---- reading the journal ------------------------------------------------------------------

/// One line per journal entry, for comparing whole sequences: CONNECTs are named by their
/// `authType` (`login` for a signed 一机一密-style login).
fn summary(journal: &[(u64, Ev)]) -> Vec<String> {
    journal
        .iter()
        .map(|(_, ev)| match ev {
            Ev::Dial { tls } => format!("dial {}", if *tls { "tls" } else { "tcp" }),
            Ev::Link { link, version } => format!("link {link} {version:?}"),
            Ev::Connect {
                link, client_id, ..
            } => {
                let kind = ["register", "regnwl", "connwl"]
                    .into_iter()
                    .find(|kind| client_id.contains(&format!("authType={kind}")))
                    .unwrap_or("login");
                format!("connect {link} {kind}")
            }
            Ev::Did { link, did } => match did {
                Did::Ack(pid) => format!("ack {link} {pid}"),
                Did::Disconnect => format!("disconnect {link}"),
                other => format!("{other:?} {link}"),
            },
            Ev::Load => "load".into(),
            Ev::Save {
                secret,
                client_id,
                ok,
            } => format!(
                "save {secret}{} {}",
                client_id
                    .as_ref()
                    .map(|c| format!(" for {c}"))
                    .unwrap_or_default(),
                if *ok { "ok" } else { "failed" }
            ),
        })
        .collect()
}

/// A CONNECT as the link saw it.
struct Connect {
    at: u64,
    client_id: String,
    username: String,
    password: String,
}

fn connects(out: &Outcome) -> Vec<Connect> {
    out.journal
        .iter()
        .filter_map(|(at, ev)| match ev {
            Ev::Connect {
                client_id,
                username,
                password,
                ..
            } => Some(Connect {
                at: *at,
                client_id: client_id.clone(),
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn saves(out: &Outcome) -> Vec<String> {
    summary(&out.journal)
        .into_iter()
        .filter(|line| line.starts_with("save"))
        .collect()
}

/// The `random` of a registration client id (text up to the next `,` or `|`).
fn random_of(client_id: &str) -> String {
    let (_, rest) = client_id
        .split_once("random=")
        .expect("a registration client id has a random");
    rest.split([',', '|'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Checks a registration CONNECT of `mode` (`register` or `regnwl`) against spec §2.1 and
/// returns its random.
fn check_registration_connect(connect: &Connect, mode: &str, securemode: &str) -> String {
    let random = random_of(&connect.client_id);
    assert!(
        !random.is_empty() && random != "123",
        "a real nonce: {random}"
    );
    assert_eq!(
        connect.client_id,
        format!(
            "pk.dn|securemode={securemode},authType={mode},random={random},signmethod=hmacsha256|"
        )
    );
    assert_eq!(connect.username, "dn&pk");
    assert_eq!(
        connect.password,
        registration_password(&random),
        "signed with the ProductSecret"
    );
    random
}

/// HMAC-SHA256(ProductSecret, `deviceName<dn>productKey<pk>random<r>`), spec §2.1.
fn registration_password(random: &str) -> String {
    let content = register_sign_content("dn", "pk", random);
    assert_eq!(content, format!("deviceNamednproductKeypkrandom{random}"));
    hmac_hex(SignMethod::HmacSha256, PS.as_bytes(), content.as_bytes())
}

/// The signed login of `pk.dn` with `secret` over TLS (spec §1.1).
fn device_login_client_id() -> String {
    format!("pk.dn|securemode=2,signmethod=hmacsha256,timestamp={FIXED_TIMESTAMP}|")
}

fn device_login_password(secret: &str) -> String {
    let content = format!("clientIdpk.dndeviceNamednproductKeypktimestamp{FIXED_TIMESTAMP}");
    hmac_hex(
        SignMethod::HmacSha256,
        secret.as_bytes(),
        content.as_bytes(),
    )
}

fn check_device_login(connect: &Connect, secret: &str) {
    assert_eq!(connect.client_id, device_login_client_id());
    assert_eq!(connect.username, "dn&pk");
    assert_eq!(connect.password, device_login_password(secret));
}

// ---- apps ---------------------------------------------------------------------------------

fn status() -> Vec<u8> {
    request(&Request::Status)
}

/// `Hello` at 0 and `Status` at each of `times`.
fn statuses_at(world: &mut World, times: &[u64]) {
    world.inputs.push((0, 0, hello()));
    for at in times {
        world.inputs.push((*at, 0, status()));
    }
}

/// Every `Status` answer: when, and what it said about registration and the link.
fn states(out: &Outcome) -> Vec<(u64, Registration, bool)> {
    out.responses
        .iter()
        .filter_map(|(at, _, r)| match r {
            Response::Status(s) => Some((*at, s.registration, s.connected)),
            _ => None,
        })
        .collect()
}

fn failed(why: RegistrationFailure) -> Registration {
    Registration::Failed(why)
}

// ---- the tests ----------------------------------------------------------------------------

#[test]
fn registers_over_mqtt_stores_before_disconnect_then_logs_in_with_the_secret() {
    let shelf = SharedShelf::default();
    let first = refused(Refusal::ServerUnavailable);
    let second = registration_link(vec![(1_000, register_answer(DS))]);
    let session = accepting();
    let mut world = registering(vec![Dial::Accept; 3], vec![first, second, session]);
    // Randoms 1, 2 for the first nonce, 3 for the backoff, 4, 5 for the second nonce.
    world.entropy = Counter { next: 1, step: 1 };
    statuses_at(&mut world, &[2_000]);
    let out = run_registering(world, &shelf, 3_000);

    assert_eq!(out.returned, None, "runs until the limit");
    assert_eq!(
        summary(&out.journal),
        [
            "load",
            "dial tls",
            "link 0 V311",
            "connect 0 register",
            "dial tls",
            "link 1 V311",
            "connect 1 register",
            &format!("save {DS} ok"),
            "disconnect 1",
            "dial tls",
            "link 2 V5",
            "connect 2 login",
        ],
        "stored once, before the registration DISCONNECT and before the login"
    );
    // Backoff base 1 s: 500 ms + 3 % 501 after the refusal; the answer came at 1 s.
    assert_eq!(out.dials, [0, 503, 1_000]);
    let connects = connects(&out);
    let r0 = check_registration_connect(&connects[0], "register", "2");
    let r1 = check_registration_connect(&connects[1], "register", "2");
    assert_ne!(r0, r1, "a fresh nonce per attempt");
    check_device_login(&connects[2], DS);
    assert_eq!(connects[2].at, 1_000);
    assert_eq!(
        shelf.borrow().stored,
        Some(("pk".into(), "dn".into(), DS.into(), None))
    );
    assert_eq!(states(&out), [(2_000, Registration::Registered, true)]);
}

#[test]
fn regnwl_logs_in_with_connwl_and_the_token() {
    let shelf = SharedShelf::default();
    let registration = registration_link(vec![(100, regnwl_answer("pk.dn.a7Yq"))]);
    let session = accepting();
    let mut world = registering(vec![Dial::Accept; 2], vec![registration, session]);
    world.config = &REGNWL;
    world.entropy = Counter { next: 9, step: 1 };
    statuses_at(&mut world, &[50, 200]);
    let out = run_registering(world, &shelf, 1_000);

    assert_eq!(
        summary(&out.journal),
        [
            "load",
            "dial tls",
            "link 0 V311",
            "connect 0 regnwl",
            &format!("save {TOKEN} for pk.dn.a7Yq ok"),
            "disconnect 0",
            "dial tls",
            "link 1 V5",
            "connect 1 connwl",
        ]
    );
    let connects = connects(&out);
    // regnwl is securemode -2 in every source (spec §2.1).
    check_registration_connect(&connects[0], "regnwl", "-2");
    assert_eq!(
        connects[1].client_id,
        "pk.dn.a7Yq|securemode=-2,authType=connwl|"
    );
    assert_eq!(connects[1].username, "dn&pk");
    assert_eq!(connects[1].password, TOKEN, "the token itself, no HMAC");
    assert_eq!(
        states(&out),
        [
            (50, Registration::Registering, false),
            (200, Registration::Registered, true)
        ]
    );
}

#[test]
fn no_answer_times_out_after_register_ms_and_retries_after_a_backoff() {
    let shelf = SharedShelf::default();
    let mut world = registering(
        vec![Dial::Accept; 2],
        vec![registration_link(vec![]), registration_link(vec![])],
    );
    let entropy = Counter {
        next: 0x1234_5678,
        step: 0x9E37_79B9,
    };
    world.entropy = entropy;
    // register_ms is 20 s from the CONNACK (at 0).
    statuses_at(&mut world, &[10_000, 19_999, 20_001]);
    let out = run_registering(world, &shelf, 30_000);

    assert_eq!(
        states(&out),
        [
            (10_000, Registration::Registering, false),
            (19_999, Registration::Registering, false),
            (20_001, failed(RegistrationFailure::Timeout), false),
        ]
    );
    // The third random number (after the two of the nonce) draws the delay from the first
    // step's upper half: [base/2, base].
    let third = entropy.next.wrapping_add(entropy.step.wrapping_mul(2));
    let delay = 500 + u64::from(third % 501);
    assert!((500..=1_000).contains(&delay));
    assert_eq!(
        out.dials,
        [0, 20_000 + delay],
        "timed out at exactly 20 s, then backed off"
    );
    assert_eq!(
        summary(&out.journal),
        [
            "load",
            "dial tls",
            "link 0 V311",
            "connect 0 register",
            "dial tls",
            "link 1 V311",
            "connect 1 register",
        ],
        "nothing stored, no login"
    );
    assert!(shelf.borrow().stored.is_none());

    // Other messages meanwhile do not extend the wait.
    let chatty = registration_link(
        (1..=30u64)
            .map(|s| (s * 1_000, publish("/pk/dn/user/get", "x".into(), None)))
            .collect(),
    );
    let world = registering(
        vec![Dial::Accept; 2],
        vec![chatty, registration_link(vec![])],
    );
    let out = run_registering(world, &SharedShelf::default(), 30_000);
    assert_eq!(out.dials, [0, 20_500]);
}

#[test]
fn network_failures_are_reported_and_retried() {
    let shelf = SharedShelf::default();
    let broken = registration_link(vec![(1_000, In::Fail(LinkError::Network))]);
    let mut world = registering(
        vec![Dial::Refuse(NetError::Connect), Dial::Accept, Dial::Hang],
        vec![broken],
    );
    // Refused at 0; after 0.5 s connected, broken at 1 s; after 1 s a dial that never
    // completes (connect_ms, 15 s), then 2 s of backoff.
    statuses_at(&mut world, &[100, 1_500, 10_000, 18_000]);
    let out = run_registering(world, &shelf, 20_000);
    assert_eq!(out.dials, [0, 500, 2_000, 19_000]);
    assert_eq!(
        states(&out),
        [
            (100, failed(RegistrationFailure::Network), false),
            (1_500, failed(RegistrationFailure::Network), false),
            (10_000, Registration::Registering, false),
            (18_000, failed(RegistrationFailure::Timeout), false),
        ]
    );
    assert!(saves(&out).is_empty());
}

/// Dial times of refused attempts over 10 virtual minutes, with no jitter: the delay is half
/// the step, the step doubles from 1 s up to 60 s.
fn expected_refusal_dials(limit: u64) -> Vec<u64> {
    let (mut at, mut step, mut dials) = (0u64, 1_000u64, vec![0u64]);
    loop {
        at += step / 2;
        if at > limit {
            return dials;
        }
        dials.push(at);
        step = (step * 2).min(60_000);
    }
}

#[test]
fn refusals_are_reported_and_retried_with_a_doubling_backoff() {
    const LIMIT: u64 = 600_000;
    let expected = expected_refusal_dials(LIMIT);
    // 500 ms, 1, 2, 4, 8, 16 s, then 30 s apart: bounded, never a hot loop.
    assert_eq!(expected.len(), 25);
    assert_eq!(
        expected[..8],
        [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500, 61_500]
    );
    for (refusal, why) in [
        (
            Refusal::BadCredentials,
            RegistrationFailure::BadProductSecret,
        ),
        (
            Refusal::NotAuthorized,
            RegistrationFailure::AlreadyActivated,
        ),
        (
            Refusal::IdentifierRejected,
            RegistrationFailure::UnknownDevice,
        ),
        (Refusal::Other(0x99), RegistrationFailure::Refused),
    ] {
        let shelf = SharedShelf::default();
        let scripts: Vec<Script> = (0..40).map(|_| refused(refusal)).collect();
        let mut world = registering(vec![Dial::Accept; 40], scripts);
        world.timing.backoff_max_ms = 60_000;
        statuses_at(&mut world, &[100, 500_000]);
        let out = run_registering(world, &shelf, LIMIT);
        assert_eq!(out.returned, None);
        assert_eq!(
            states(&out),
            [(100, failed(why), false), (500_000, failed(why), false)],
            "{refusal:?}"
        );
        assert_eq!(out.dials, expected, "{refusal:?}");
        let connects = connects(&out);
        assert_eq!(connects.len(), expected.len());
        for c in &connects {
            check_registration_connect(c, "register", "2");
        }
        assert!(saves(&out).is_empty());
    }

    // With jitter each delay stays inside its step's upper half.
    let scripts: Vec<Script> = (0..40).map(|_| refused(Refusal::BadCredentials)).collect();
    let mut world = registering(vec![Dial::Accept; 40], scripts);
    world.entropy = Counter {
        next: 7,
        step: 0x9E37_79B9,
    };
    let out = run_registering(world, &SharedShelf::default(), LIMIT);
    let mut step = 1_000u64;
    for pair in out.dials.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (step / 2..=step).contains(&gap),
            "gap {gap} outside [{}, {step}]: {:?}",
            step / 2,
            out.dials
        );
        step = (step * 2).min(60_000);
    }
    // Between all delays at the top of their step and all at the bottom (25, above).
    assert!((15..=25).contains(&out.dials.len()), "{:?}", out.dials);
}

#[test]
fn a_failed_store_is_not_used_and_the_next_attempt_registers_again() {
    let shelf = SharedShelf::default();
    shelf.borrow_mut().failing_saves = 1;
    let first = registration_link(vec![(100, register_answer(DS))]);
    let second = registration_link(vec![(1_000, register_answer(DS2))]);
    let mut world = registering(vec![Dial::Accept; 3], vec![first, second, accepting()]);
    statuses_at(&mut world, &[300, 1_500]);
    let out = run_registering(world, &shelf, 2_000);

    assert_eq!(
        summary(&out.journal),
        [
            "load",
            "dial tls",
            "link 0 V311",
            "connect 0 register",
            &format!("save {DS} failed"),
            "disconnect 0",
            "dial tls",
            "link 1 V311",
            "connect 1 register",
            &format!("save {DS2} ok"),
            "disconnect 1",
            "dial tls",
            "link 2 V5",
            "connect 2 login",
        ]
    );
    assert_eq!(out.dials, [0, 600, 1_000]);
    assert_eq!(
        states(&out),
        [
            (300, failed(RegistrationFailure::Storage), false),
            (1_500, Registration::Registered, true),
        ]
    );
    let connects = connects(&out);
    check_device_login(&connects[2], DS2);
    assert!(
        connects
            .iter()
            .all(|c| c.password != device_login_password(DS)),
        "the secret that was not stored was never used"
    );
}

#[test]
fn a_qos1_answer_is_acknowledged_and_other_messages_ignored() {
    let shelf = SharedShelf::default();
    let registration = registration_link(vec![
        // Not the answer, though it looks like one.
        (
            100,
            publish(
                "/sys/pk/dn/thing/service/property/set",
                format!(r#"{{"deviceSecret":"{DS2}"}}"#),
                Some(3),
            ),
        ),
        // The other mode's answer topic, QoS 0.
        (150, regnwl_answer("pk.dn.zz")),
        (160, In::PingResp),
        (
            200,
            publish(
                REGISTER_TOPIC,
                format!(r#"{{"productKey":"pk","deviceName":"dn","deviceSecret":"{DS}"}}"#),
                Some(9),
            ),
        ),
    ]);
    let world = registering(vec![Dial::Accept; 2], vec![registration, accepting()]);
    let out = run_registering(world, &shelf, 1_000);

    assert_eq!(
        summary(&out.journal),
        [
            "load",
            "dial tls",
            "link 0 V311",
            "connect 0 register",
            "ack 0 3",
            "ack 0 9",
            &format!("save {DS} ok"),
            "disconnect 0",
            "dial tls",
            "link 1 V5",
            "connect 1 login",
        ]
    );
    let acks: Vec<(u64, Ev)> = out
        .journal
        .iter()
        .filter(|(_, ev)| {
            matches!(
                ev,
                Ev::Did {
                    did: Did::Ack(_),
                    ..
                }
            )
        })
        .cloned()
        .collect();
    assert_eq!(acks[0].0, 100);
    assert_eq!(acks[1].0, 200);
    check_device_login(&connects(&out)[1], DS);
}

#[test]
fn a_malformed_answer_is_a_bad_reply_and_nothing_is_stored() {
    let shelf = SharedShelf::default();
    let bad = [
        r#"{"deviceSecret":""}"#.to_string(),
        r#"{"productKey":"pk","deviceName":"other","deviceSecret":"DsForAnotherDevice"}"#
            .to_string(),
        r#"{"productKey":"pk2","deviceName":"dn","deviceSecret":"DsForAnotherProduct"}"#
            .to_string(),
        r#"{"productKey":"pk","deviceName":"dn"}"#.to_string(),
        format!(r#"{{"deviceSecret":"{}"}}"#, "x".repeat(129)),
        "not json {".to_string(),
    ];
    let n = bad.len();
    let scripts: Vec<Script> = bad
        .into_iter()
        .map(|payload| registration_link(vec![(0, publish(REGISTER_TOPIC, payload, None))]))
        .collect();
    let mut world = registering(vec![Dial::Accept; n], scripts);
    // Attempts at 0, 0.5, 1.5, 3.5, 7.5, 15.5 s; the answers are there at once.
    statuses_at(&mut world, &[250, 1_000, 2_500, 5_000, 10_000, 20_000]);
    let out = run_registering(world, &shelf, 25_000);

    assert_eq!(out.dials, [0, 500, 1_500, 3_500, 7_500, 15_500]);
    assert_eq!(
        states(&out),
        [250, 1_000, 2_500, 5_000, 10_000, 20_000].map(|at| (
            at,
            failed(RegistrationFailure::BadReply),
            false
        ))
    );
    assert!(saves(&out).is_empty(), "{:?}", summary(&out.journal));
    assert!(shelf.borrow().stored.is_none());
    assert!(
        summary(&out.journal).iter().all(|l| !l.contains("login")),
        "no login"
    );
    // The answer was read whole: every registration link is closed with a DISCONNECT.
    let disconnects = summary(&out.journal)
        .iter()
        .filter(|l| l.starts_with("disconnect"))
        .count();
    assert_eq!(disconnects, n, "{:?}", summary(&out.journal));
}

#[test]
fn stored_credentials_at_boot_mean_no_registration() {
    for (config, stored, client_id, password) in [
        (
            &REGISTER,
            (DS, None),
            device_login_client_id(),
            device_login_password(DS),
        ),
        (
            &REGNWL,
            (TOKEN, Some("pk.dn.b8")),
            "pk.dn.b8|securemode=-2,authType=connwl|".to_string(),
            TOKEN.to_string(),
        ),
    ] {
        let shelf = SharedShelf::default();
        shelf.borrow_mut().stored = Some((
            "pk".into(),
            "dn".into(),
            stored.0.into(),
            stored.1.map(Into::into),
        ));
        let mut world = registering(vec![Dial::Accept], vec![accepting()]);
        world.config = config;
        statuses_at(&mut world, &[100]);
        let out = run_registering(world, &shelf, 1_000);
        assert_eq!(
            summary(&out.journal),
            ["load", "dial tls", "link 0 V5", "connect 0 connwl"].map(|l| {
                if stored.1.is_none() && l.starts_with("connect") {
                    "connect 0 login"
                } else {
                    l
                }
            })
        );
        let connects = connects(&out);
        assert_eq!(connects[0].client_id, client_id);
        assert_eq!(connects[0].username, "dn&pk");
        assert_eq!(connects[0].password, password);
        assert_eq!(states(&out), [(100, Registration::Registered, true)]);
    }
}

#[test]
fn a_stop_during_registration_returns_at_once_with_nothing_stored() {
    // During the backoff after a refusal (5 s with base 10 s).
    let shelf = SharedShelf::default();
    let mut world = registering(
        vec![Dial::Accept; 2],
        vec![
            refused(Refusal::BadCredentials),
            refused(Refusal::BadCredentials),
        ],
    );
    world.timing.backoff_base_ms = 10_000;
    world.stop_at = Some(2_000);
    let out = run_registering(world, &shelf, 60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 2_000);
    assert_eq!(out.dials, [0]);

    // While waiting for the pushed answer (it would come at 15 s).
    let shelf = SharedShelf::default();
    let registration = registration_link(vec![(15_000, register_answer(DS))]);
    let mut world = registering(
        vec![Dial::Accept; 2],
        vec![registration.clone(), accepting()],
    );
    world.stop_at = Some(5_000);
    let out = run_registering(world, &shelf, 60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 5_000);
    assert_eq!(out.dials, [0]);
    assert!(saves(&out).is_empty());
    assert!(shelf.borrow().stored.is_none());

    // While the registration CONNECT waits for its CONNACK.
    let shelf = SharedShelf::default();
    let mut world = registering(vec![Dial::Accept], vec![LinkState::new(Login::Hang)]);
    world.stop_at = Some(3_000);
    let out = run_registering(world, &shelf, 60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 3_000);

    // While the stream opens.
    let shelf = SharedShelf::default();
    let mut world = registering(vec![Dial::Hang], vec![]);
    world.stop_at = Some(4_000);
    let out = run_registering(world, &shelf, 60_000);
    assert_eq!(out.returned, Some(Ok(())));
    assert_eq!(out.end, 4_000);
}

#[test]
fn apps_are_served_while_registration_waits() {
    let shelf = SharedShelf::default();
    let registration = registration_link(vec![(12_000, register_answer(DS))]);
    let mut world = registering(vec![Dial::Accept; 2], vec![registration, accepting()]);
    world.inputs.push((3_000, 0, hello()));
    world.inputs.push((7_000, 0, status()));
    world
        .inputs
        .push((8_000, 0, request(&Request::WaitEvent { timeout_ms: 1_000 })));
    world.inputs.push((13_000, 0, status()));
    let out = run_registering(world, &shelf, 14_000);

    let answered: Vec<(u64, &Response<'_>)> =
        out.responses.iter().map(|(at, _, r)| (*at, r)).collect();
    assert!(
        matches!(
            answered.as_slice(),
            [
                (3_000, Response::Welcome { .. }),
                (
                    7_000,
                    Response::Status(LinkStatus {
                        registration: Registration::Registering,
                        connected: false,
                        ..
                    })
                ),
                (9_000, Response::NoEvent),
                (
                    13_000,
                    Response::Status(LinkStatus {
                        registration: Registration::Registered,
                        connected: true,
                        ..
                    })
                ),
            ]
        ),
        "each answered at once (the wait at its timeout): {answered:?}"
    );
    assert_eq!(out.dials, [0, 12_000]);
}

/// Every secret of a run, and what logs in as well as a secret does.
fn secrets_of(out: &Outcome, issued: &[&str]) -> Vec<String> {
    let mut secrets: Vec<String> = vec![PS.into()];
    secrets.extend(issued.iter().map(|s| (*s).to_string()));
    for c in connects(out) {
        secrets.push(c.password.clone());
        secrets.push(c.password.to_lowercase());
    }
    secrets
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_reaches_an_app_or_a_log() {
    crate::test_log::install();
    for config in [&REGISTER, &REGNWL] {
        let shelf = SharedShelf::default();
        let regnwl = config.auth == AuthMode::ProductSecretNoPreRegister;
        let (answer_topic, answer) = if regnwl {
            (
                REGNWL_TOPIC,
                format!(
                    r#"{{"clientId":"pk.dn.c4","productKey":"pk","deviceName":"dn","deviceToken":"{TOKEN}"}}"#
                ),
            )
        } else {
            (
                REGISTER_TOPIC,
                format!(r#"{{"productKey":"pk","deviceName":"dn","deviceSecret":"{DS}"}}"#),
            )
        };
        // Refused, then a bad reply that carries a secret for another device, then an
        // answer after an unrelated message; then a session with app traffic.
        let bad = registration_link(vec![(
            0,
            publish(
                answer_topic,
                format!(r#"{{"deviceName":"other","deviceSecret":"{DS2}","deviceToken":"{DS2}"}}"#),
                Some(1),
            ),
        )]);
        let good = registration_link(vec![
            (
                1_600,
                publish(
                    "/sys/pk/dn/thing/service/property/set",
                    format!(r#"{{"deviceSecret":"{DS2}"}}"#),
                    Some(2),
                ),
            ),
            (1_700, publish(answer_topic, answer, Some(3))),
        ]);
        let session = accepting();
        session.borrow_mut().incoming.extend([
            (2_000, In::SubAck(1)),
            (2_100, publish(GET, "hello app".into(), Some(5))),
        ]);
        let mut world = registering(
            vec![Dial::Accept; 4],
            vec![refused(Refusal::BadCredentials), bad, good, session.clone()],
        );
        // No jitter: attempts at 0, 0.5 and 1.5 s; the answer at 1.7 s, then the login.
        world.config = config;
        let app =
            |world: &mut World, at: u64, r: &Request<'_>| world.inputs.push((at, 0, request(r)));
        world.inputs.push((0, 0, hello()));
        app(
            &mut world,
            0,
            &Request::Subscribe {
                filter: GET,
                qos: Qos::AtLeastOnce,
                token: 1,
            },
        );
        for at in [100, 700, 1_650, 1_900, 2_200] {
            app(&mut world, at, &Request::Status);
        }
        // Connected, the SUBACK's result, the message (waited for), the publish's result.
        for at in [1_800, 2_050, 2_080, 2_160] {
            app(&mut world, at, &Request::WaitEvent { timeout_ms: 5_000 });
        }
        app(
            &mut world,
            2_150,
            &Request::Publish {
                topic: "/pk/dn/user/update",
                payload: b"{}",
                qos: Qos::AtMostOnce,
                token: 2,
            },
        );
        let out = run_registering(world, &shelf, 3_000);

        // The run went where it should: registered, logged in, traffic both ways.
        let issued = if regnwl { TOKEN } else { DS };
        assert_eq!(saves(&out).len(), 1, "{:?}", summary(&out.journal));
        assert!(saves(&out)[0].contains(issued));
        assert!(
            out.responses.iter().any(|(_, _, r)| matches!(
                r,
                Response::Event(Event::Message {
                    payload: b"hello app",
                    ..
                })
            )),
            "{:?}",
            out.responses
        );
        assert!(
            did(&session)
                .iter()
                .any(|(_, d)| matches!(d, Did::Publish { .. }))
        );
        assert!(out.raw.len() >= 9, "{:?}", out.responses);
        assert!(
            out.raw.iter().any(|bytes| contains(bytes, b"hello app")),
            "the scan sees the payloads delivered to apps"
        );

        let secrets = secrets_of(&out, &[DS, DS2, TOKEN]);
        assert!(secrets.len() >= 4 + 2 * 3, "three CONNECTs at least");
        for (bytes, (at, _, response)) in out.raw.iter().zip(&out.responses) {
            for secret in &secrets {
                assert!(
                    !contains(bytes, secret.as_bytes()),
                    "a secret in the response at {at}: {response:?}"
                );
            }
        }
        let lines = crate::test_log::lines();
        assert!(
            lines.iter().any(|l| l.contains("registered pk/dn")),
            "the capture logger is not installed: {lines:?}"
        );
        for line in &lines {
            for secret in &secrets {
                assert!(!line.contains(secret.as_str()), "secret logged: {line}");
            }
        }
    }
}

#[test]
fn refused_stored_credentials_lead_to_one_registration_that_replaces_them() {
    // Stored DS; the platform refuses it twice (the device was registered again elsewhere),
    // the runner registers once (DS2 issued), stores it, and logs in with it.
    let shelf = SharedShelf::default();
    shelf.borrow_mut().stored = Some(("pk".into(), "dn".into(), DS.into(), None));
    let links = vec![
        refused(Refusal::BadCredentials),
        refused(Refusal::BadCredentials),
        registration_link(vec![(0, register_answer(DS2))]),
        accepting(),
    ];
    let mut world = registering(vec![Dial::Accept; 4], links);
    statuses_at(&mut world, &[60_000]);
    let out = run_registering(world, &shelf, 60_000);
    let lines = summary(&out.journal);
    let connects: Vec<&String> = lines.iter().filter(|l| l.starts_with("connect")).collect();
    assert_eq!(
        connects,
        [
            "connect 0 login",
            "connect 1 login",
            "connect 2 register",
            "connect 3 login"
        ],
        "{lines:?}"
    );
    assert_eq!(saves(&out), [format!("save {DS2} ok")]);
    let all = self::connects(&out);
    check_device_login(&all[0], DS);
    check_device_login(&all[3], DS2);
    assert_eq!(states(&out), [(60_000, Registration::Registered, true)]);
}

#[test]
fn a_failed_registration_after_refusals_keeps_the_stored_credentials() {
    // The registration after two refusals is itself refused (activated): the stored
    // credentials stay and the session goes on trying them.
    let shelf = SharedShelf::default();
    shelf.borrow_mut().stored = Some(("pk".into(), "dn".into(), DS.into(), None));
    let links = vec![
        refused(Refusal::BadCredentials),
        refused(Refusal::BadCredentials),
        refused(Refusal::NotAuthorized),
        accepting(),
    ];
    let mut world = registering(vec![Dial::Accept; 4], links);
    statuses_at(&mut world, &[60_000]);
    let out = run_registering(world, &shelf, 60_000);
    let lines = summary(&out.journal);
    let connects: Vec<&String> = lines.iter().filter(|l| l.starts_with("connect")).collect();
    assert_eq!(
        connects,
        [
            "connect 0 login",
            "connect 1 login",
            "connect 2 register",
            "connect 3 login"
        ],
        "{lines:?}"
    );
    assert!(saves(&out).is_empty());
    check_device_login(&self::connects(&out)[3], DS);
    assert_eq!(
        shelf.borrow().stored,
        Some(("pk".into(), "dn".into(), DS.into(), None))
    );
    assert_eq!(states(&out), [(60_000, Registration::Registered, true)]);
}
