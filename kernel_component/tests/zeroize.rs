//! Secrets do not outlive their owners in freed memory: an allocator that, while armed, looks
//! through every block handed back for a given byte string. Dropping a `Secret`, the
//! DeviceSecret provider or the login strings (whose password is an HMAC that logs in as well
//! as the secret) must free no block that still holds them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use aliot_kernel::auth::{
    DeviceIdentity, FIXED_TIMESTAMP, device_login, hmac_hex, login_sign_content,
};
use aliot_kernel::config::SignMethod;
use aliot_kernel::credentials::{DeviceSecretLogin, Secret};

/// Looks for `NEEDLE` in freed blocks while `ARMED`.
struct Scanning;

static ARMED: AtomicBool = AtomicBool::new(false);
static NEEDLE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NEEDLE_LEN: AtomicUsize = AtomicUsize::new(0);
static FOUND: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    /// This thread is the one scanning: frees on the other test threads (which may hold the
    /// same bytes, e.g. a plain `String` a test builds before locking) do not count.
    static SCANNING_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

// SAFETY: every call is forwarded unchanged to the system allocator; `dealloc` only reads the
// block being freed (still owned by the caller until the forwarded call) before freeing it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let here = SCANNING_HERE
            .try_with(std::cell::Cell::get)
            .unwrap_or(false);
        if here && ARMED.load(Ordering::SeqCst) {
            let needle = NEEDLE.load(Ordering::SeqCst);
            let len = NEEDLE_LEN.load(Ordering::SeqCst);
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until it is freed below;
            // the needle is a buffer the test keeps alive while armed.
            let (block, needle) = unsafe {
                (
                    std::slice::from_raw_parts(ptr, layout.size()),
                    std::slice::from_raw_parts(needle, len),
                )
            };
            if len > 0 && block.windows(len).any(|w| w == needle) {
                FOUND.store(true, Ordering::SeqCst);
            }
        }
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// One scan at a time (tests run on several threads).
static SCAN: Mutex<()> = Mutex::new(());

/// Whether dropping `value` freed a block that still holds `needle`.
fn leaves_behind<T>(needle: &[u8], value: T) -> bool {
    let _one = SCAN.lock().unwrap_or_else(|e| e.into_inner());
    NEEDLE.store(needle.as_ptr().cast_mut(), Ordering::SeqCst);
    NEEDLE_LEN.store(needle.len(), Ordering::SeqCst);
    FOUND.store(false, Ordering::SeqCst);
    SCANNING_HERE.with(|c| c.set(true));
    ARMED.store(true, Ordering::SeqCst);
    drop(value);
    ARMED.store(false, Ordering::SeqCst);
    SCANNING_HERE.with(|c| c.set(false));
    FOUND.load(Ordering::SeqCst)
}

const SECRET: &str = "ZeroizeMe-DeviceSecret-0123456789";

#[test]
fn the_scanner_finds_what_is_not_zeroized() {
    // The check can fail: a plain `String` leaves its bytes behind.
    assert!(leaves_behind(SECRET.as_bytes(), String::from(SECRET)));
}

#[test]
fn a_dropped_secret_leaves_nothing_behind() {
    assert!(!leaves_behind(
        SECRET.as_bytes(),
        Secret::from(String::from(SECRET))
    ));
    let provider = DeviceSecretLogin::new(Secret::from(String::from(SECRET))).unwrap();
    assert!(!leaves_behind(SECRET.as_bytes(), provider));
}

#[test]
fn dropped_login_strings_leave_no_password_behind() {
    let id = DeviceIdentity {
        product_key: "pk",
        device_name: "dn",
        client_id: "pk.dn",
        device_secret: SECRET.as_bytes(),
    };
    let expected = hmac_hex(
        SignMethod::HmacSha256,
        SECRET.as_bytes(),
        login_sign_content(&id, FIXED_TIMESTAMP).as_bytes(),
    );
    let login = device_login(&id, SignMethod::HmacSha256, true);
    assert_eq!(login.password, expected);
    assert!(!leaves_behind(expected.as_bytes(), login));
}

/// A transport that answers from a fixed script (not heap) and forgets what is written.
struct Scripted {
    input: &'static [u8],
    at: usize,
}

impl embedded_io_async::ErrorType for Scripted {
    type Error = embedded_io_async::ErrorKind;
}

impl embedded_io_async::Read for Scripted {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let rest = &self.input[self.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl embedded_io_async::Write for Scripted {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// CONNACK accepted, then the `/ext/register` answer carrying [`SECRET`] (QoS 0).
static REGISTRATION_SCRIPT: std::sync::LazyLock<&'static [u8]> = std::sync::LazyLock::new(|| {
    let topic = b"/ext/register";
    let payload = format!(r#"{{"deviceSecret":"{SECRET}"}}"#);
    let mut body = vec![0, topic.len() as u8];
    body.extend_from_slice(topic);
    body.extend_from_slice(payload.as_bytes());
    let mut bytes = vec![0x20, 2, 0, 0, 0x30, body.len() as u8];
    bytes.extend_from_slice(&body);
    Box::leak(bytes.into_boxed_slice())
});

#[test]
fn a_dropped_link_leaves_neither_the_connect_password_nor_a_registration_answer_behind() {
    use aliot_kernel::link::v311::V311Link;
    use aliot_kernel::link::{ConnectParams, Incoming, MqttLink};

    const PASSWORD: &str = "ZeroizeMe-ConnectPassword-9876543210";
    let mut link = V311Link::new(Scripted {
        input: &REGISTRATION_SCRIPT,
        at: 0,
    });
    futures_executor::block_on(async {
        let params = ConnectParams {
            client_id: "pk.dn|securemode=2,authType=register,random=1,signmethod=hmacsha256|",
            username: "dn&pk",
            password: PASSWORD,
            keepalive_secs: 60,
        };
        link.connect(&params).await.expect("CONNACK");
        match link.receive().await {
            Ok(Incoming::Publish { topic, payload, .. }) => {
                assert_eq!(topic, "/ext/register");
                assert!(
                    payload
                        .windows(SECRET.len())
                        .any(|w| w == SECRET.as_bytes())
                );
            }
            other => panic!("{other:?}"),
        }
    });
    // The CONNECT (with the password) was encoded into the link's write buffer and the
    // answer (with the secret) read into its receive buffer: both are wiped on drop.
    let (password, secret) = (PASSWORD.as_bytes(), SECRET.as_bytes());
    assert!(!leaves_behind(password, link), "the password stayed behind");
    let mut again = V311Link::new(Scripted {
        input: &REGISTRATION_SCRIPT,
        at: 0,
    });
    futures_executor::block_on(async {
        let params = ConnectParams {
            client_id: "c",
            username: "u",
            password: "p",
            keepalive_secs: 60,
        };
        again.connect(&params).await.expect("CONNACK");
        again.receive().await.expect("answer");
    });
    assert!(!leaves_behind(secret, again), "the secret stayed behind");
}
