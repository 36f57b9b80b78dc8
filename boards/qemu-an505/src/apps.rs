//! The three apps linked into this image, each in its own flash section (see `memory.x`).
//!
//! They stand in for separately built apps until the image builder exists: each is one
//! function placed in its app's flash section, using only its own stack (in its own RAM) and
//! `svc`. They must not call into kernel code (the MPU would stop them: only their own flash
//! is executable for them), so they use volatile accesses and inline helpers only, and no
//! constants that would land in the kernel's `.rodata` (the greeter's longer request frames are
//! statics in its own flash section). Requests and expected answers are aliot-abi COBS frames
//! written out byte by byte. The greeter's topics are the default manifest's
//! (`manifest/device.toml`): its app 0, `publish_test`, may publish to `update` and subscribe
//! to `get`, but not subscribe to `ceshi`.
//!
//! The greeter also checks that its floating-point context survives the kernel: it finds
//! s0-s31 zeroed at its start (nothing of the kernel or another app leaks in), loads its own
//! pattern into s0-s31 and FPSCR, and after every syscall and after being preempted by
//! SysTick checks every one (the kernel writes other values into them while serving, see
//! `fp_scaffold`).

use core::arch::asm;

use aliot_cortex_m33::header::MAGIC;

/// The app header as laid out in flash (see `aliot_cortex_m33::header`).
#[repr(C)]
pub struct RawHeader {
    magic: u32,
    abi_major: u16,
    abi_minor: u16,
    entry: unsafe extern "C" fn(u32) -> !,
    stack_size: u32,
    ram_size: u32,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == aliot_cortex_m33::header::HEADER_LEN);

/// Exit codes of the greeter.
pub mod greeter_exit {
    /// Every answer was as expected.
    pub const OK: u32 = 0;
    /// `Hello` was not answered `Welcome { 2, 2, 0 }`.
    pub const BAD_WELCOME: u32 = 1;
    /// `Status` was not answered with the offline link status, one publish pending.
    pub const BAD_STATUS: u32 = 2;
    /// `Subscribe` to its granted `get` was not answered `Accepted { token: 1 }`.
    pub const BAD_SUBSCRIBE: u32 = 3;
    /// `Subscribe` to `ceshi`, not granted to it, was not answered `Error(NotPermitted)`.
    pub const ACL_NOT_ENFORCED: u32 = 4;
    /// QoS 1 `Publish` to its `update` was not answered `Accepted { token: 3 }` (offline, the
    /// kernel queues it).
    pub const BAD_PUBLISH: u32 = 5;
    /// s0-s31 were not all zero when it started: FP values of the kernel or of another app
    /// reached it.
    pub const FP_NOT_CLEAN: u32 = 6;
    /// An FP register or FPSCR lost its value across a syscall.
    pub const FP_LOST_AT_SYSCALL: u32 = 7;
    /// An FP register or FPSCR lost its value across a SysTick preemption.
    pub const FP_LOST_AT_PREEMPTION: u32 = 8;
    /// It waited for a SysTick preemption that never came.
    pub const NOT_PREEMPTED: u32 = 9;
}

/// The word the greeter's FP check keeps in register s`n`; other seeds give other values in
/// every register (the kernel's scaffold uses its own).
#[inline(always)]
pub const fn fp_pattern(seed: u32, n: u32) -> u32 {
    seed ^ n.wrapping_mul(0x0101_0101)
}

/// Seed of the greeter's FP pattern.
const GREETER_FP_SEED: u32 = 0x6A09_E667;
/// FPSCR the greeter sets: N and V, round towards zero, the IOC and OFC flags.
const GREETER_FPSCR: u32 = 0x9000_0000 | 0b11 << 22 | 0b101;

/// Store s0-s31 at `words` (32 words); returns FPSCR.
#[inline(always)]
unsafe fn fp_save(words: *mut u32) -> u32 {
    let fpscr: u32;
    // SAFETY: `words` holds 32 words of this app's stack.
    unsafe {
        asm!("vstmia {p}, {{s0-s31}}", "vmrs {f}, fpscr", p = in(reg) words, f = out(reg) fpscr,
             options(nostack, preserves_flags));
    }
    fpscr
}

/// Load s0-s31 from `words` (32 words) and FPSCR from `fpscr`. The values are this app's
/// check pattern: no compiled code of the greeter uses FP registers, so they stay until read
/// back by [`fp_save`].
#[inline(always)]
unsafe fn fp_load(words: *const u32, fpscr: u32) {
    // SAFETY: `words` holds 32 words of this app's stack.
    unsafe {
        asm!("vldmia {p}, {{s0-s31}}", "vmsr fpscr, {f}", p = in(reg) words, f = in(reg) fpscr,
             options(nostack, preserves_flags));
    }
}

/// s0-s31 all hold `pattern(n)` and FPSCR holds `fpscr`; `words` is 32 words of scratch.
#[inline(always)]
unsafe fn fp_holds(words: *mut u32, seed: u32, fpscr: u32, zero: bool) -> bool {
    // SAFETY: `words` holds 32 words of this app's stack.
    let fpscr_now = unsafe { fp_save(words) };
    let mut same = zero || fpscr_now == fpscr;
    let mut n = 0;
    while n < 32 {
        let want = if zero { 0 } else { fp_pattern(seed, n) };
        // SAFETY: as above.
        same &= unsafe { words.add(n as usize).read_volatile() } == want;
        n += 1;
    }
    same
}

/// Spin until SysTick preempts this app (seen as the exception frame the hardware stacked
/// just below its stack pointer over a canary); false if `limit` rounds passed without.
#[inline(always)]
unsafe fn spin_until_preempted(limit: u32) -> bool {
    let left: u32;
    // SAFETY: writes and reads the 128 bytes below its stack pointer, which lie in its stack
    // (1 KiB, this function's frame is far from its bottom) and which only an exception frame
    // can overwrite meanwhile. No register but the named ones changes.
    unsafe {
        asm!(
            "sub {p}, sp, #128",
            "movs {i}, #0",
            "1:",
            "str {c}, [{p}, {i}, lsl #2]",
            "adds {i}, {i}, #1",
            "cmp {i}, #32",
            "bne 1b",
            "2:",
            "movs {i}, #0",
            "3:",
            "ldr {w}, [{p}, {i}, lsl #2]",
            "cmp {w}, {c}",
            "bne 4f",
            "adds {i}, {i}, #1",
            "cmp {i}, #32",
            "bne 3b",
            "subs {n}, {n}, #1",
            "bne 2b",
            "4:",
            p = out(reg) _,
            i = out(reg) _,
            w = out(reg) _,
            c = in(reg) 0xC5A5_5A5Cu32,
            n = inout(reg) limit => left,
        );
    }
    left != 0
}

/// A frame written as text (every COBS code byte here is below 0x80) as the array an app copies
/// from its own flash; a length that does not match fails the build.
const fn frame<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == N);
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// `Subscribe { filter: ".../user/get", qos: AtLeastOnce, token: 1 }` = postcard
/// `[02, 23, <35 bytes>, 01, 01]` (no zero inside) = COBS `[28, <39 bytes>, 00]`.
#[unsafe(link_section = ".greeter_text.frames")]
static SUBSCRIBE_GET: [u8; 41] = frame(concat!(
    "\x28\x02\x23",
    "/a1NrfDemo01/nrf9160-dk-01/user/get",
    "\x01\x01\x00"
));

/// `Subscribe { filter: ".../user/ceshi", qos: AtLeastOnce, token: 2 }` = postcard
/// `[02, 25, <37 bytes>, 01, 02]` = COBS `[2A, <41 bytes>, 00]`.
#[unsafe(link_section = ".greeter_text.frames")]
static SUBSCRIBE_CESHI: [u8; 43] = frame(concat!(
    "\x2A\x02\x25",
    "/a1NrfDemo01/nrf9160-dk-01/user/ceshi",
    "\x01\x02\x00"
));

/// `Publish { topic: ".../user/update", payload: b"hello", qos: AtLeastOnce, token: 3 }` =
/// postcard `[01, 26, <38 bytes>, 05, "hello", 01, 03]` = COBS `[31, <48 bytes>, 00]`.
#[unsafe(link_section = ".greeter_text.frames")]
static PUBLISH_UPDATE: [u8; 50] = frame(concat!(
    "\x31\x01\x26",
    "/a1NrfDemo01/nrf9160-dk-01/user/update",
    "\x05hello\x01\x03\x00"
));

/// What the hostile app tries, chosen by its entry argument: one run per act, since each act
/// ends the run (the kernel restarts it for the next act, see the board's restart policy).
pub mod hostile_act {
    /// Kernel-address syscall buffer, over-long request, then a write to kernel RAM.
    pub const ATTACK_KERNEL: u32 = 0;
    /// Read the greeter's RAM.
    pub const READ_OTHER_APP: u32 = 1;
    /// Execute code written to its own RAM.
    pub const EXECUTE_RAM: u32 = 2;
    /// Spin forever without a syscall: SysTick must preempt it and the kernel end it.
    pub const SPIN: u32 = 3;
    /// Recurse until the stack overflows: PSPLIM must stop it (UsageFault STKOF).
    pub const OVERFLOW: u32 = 4;
    /// `Hello`, then [`FLOOD_CALLS`] syscalls in a row, every 100th with a kernel-address
    /// buffer.
    pub const FLOOD: u32 = 5;
    /// Syscalls the flood makes.
    pub const FLOOD_CALLS: u32 = 10_000;
    /// The same flood in the live phase, through the kernel's runner while the session runs:
    /// any `Status` answer is right (connected or not, however many publishes pend).
    pub const FLOOD_LIVE: u32 = 6;
    /// Every this many-th flood call uses a kernel-address buffer (must be refused).
    pub const FLOOD_BAD_EVERY: u32 = 100;
}

/// Word the hostile app leaves at the bottom of its RAM (below its stack) in every run: it
/// must read 0 there at the start of the next run, or the kernel leaked RAM between runs.
pub const HOSTILE_MARKER: u32 = 0x4C45_414B;

/// Exit codes of the hostile app (it should never exit: each act must end in a fault).
pub mod hostile_exit {
    /// A kernel address was accepted as a syscall buffer.
    pub const KERNEL_BUFFER_ACCEPTED: u32 = 10;
    /// A request longer than its buffer was accepted.
    pub const LONG_REQUEST_ACCEPTED: u32 = 11;
    /// The write to kernel RAM went through.
    pub const KERNEL_WRITE_SUCCEEDED: u32 = 12;
    /// The read of the greeter's RAM went through.
    pub const OTHER_APP_READ_SUCCEEDED: u32 = 13;
    /// Code in its RAM ran.
    pub const RAM_EXECUTED: u32 = 14;
    /// Unknown act.
    pub const UNKNOWN_ACT: u32 = 15;
    /// It found its previous run's marker in its RAM.
    pub const LEAKED: u32 = 16;
    /// The recursion came back (no stack limit stopped it).
    pub const OVERFLOW_SURVIVED: u32 = 17;
    /// A register of the spinner changed across a preemption.
    pub const CONTEXT_LOST: u32 = 19;
    /// The flood got every answer it expected (a non-zero code: the run still counts as
    /// ended abnormally, so the restart limit is reached with the flood as the last act).
    pub const FLOOD_DONE: u32 = 20;
    /// A flood call got a wrong answer.
    pub const FLOOD_WRONG_ANSWER: u32 = 21;
}

#[used]
#[unsafe(link_section = ".greeter_header")]
static GREETER_HEADER: RawHeader = RawHeader {
    magic: MAGIC,
    abi_major: aliot_abi::ABI_MAJOR,
    abi_minor: aliot_abi::ABI_MINOR,
    entry: greeter_main,
    stack_size: 1024,
    ram_size: 2048,
};

#[used]
#[unsafe(link_section = ".hostile_header")]
static HOSTILE_HEADER: RawHeader = RawHeader {
    magic: MAGIC,
    abi_major: aliot_abi::ABI_MAJOR,
    abi_minor: aliot_abi::ABI_MINOR,
    entry: hostile_main,
    stack_size: 1024,
    // The lower 1 KiB holds its marker (see HOSTILE_MARKER), below the stack's limit.
    ram_size: 2048,
};

/// An app built against an older ABI major: the kernel must refuse to start it.
#[used]
#[unsafe(link_section = ".stale_header")]
static STALE_HEADER: RawHeader = RawHeader {
    magic: MAGIC,
    abi_major: aliot_abi::ABI_MAJOR - 1,
    abi_minor: 0,
    entry: stale_main,
    stack_size: 1024,
    ram_size: 1024,
};

/// `svc 0`: send the request frame `buf[..len]`, get the answer in `buf`; returns r0.
#[inline(always)]
unsafe fn command(buf: *mut u8, len: u32, capacity: u32) -> u32 {
    let r0: u32;
    // SAFETY: the kernel reads and writes at most `capacity` bytes at `buf`, and only after
    // checking they lie in this app's RAM; it preserves every register but r0.
    unsafe {
        asm!("svc 0", inlateout("r0") buf as u32 => r0, in("r1") len, in("r2") capacity,
             options(nostack));
    }
    r0
}

/// `svc 1`: end this app with `code`.
#[inline(always)]
unsafe fn exit(code: u32) -> ! {
    // SAFETY: the kernel never returns to an app that exited.
    unsafe { asm!("svc 1", in("r0") code, options(noreturn, nostack)) }
}

/// Write `bytes` at `buf` (volatile, so no `memcpy` from kernel code is emitted).
#[inline(always)]
unsafe fn put<const N: usize>(buf: *mut u8, bytes: [u8; N]) {
    let mut i = 0;
    while i < N {
        // SAFETY: the caller's buffer holds at least N bytes. `bytes` is an immediate array.
        unsafe { buf.add(i).write_volatile(bytes[i]) };
        i += 1;
    }
}

/// `buf[..N] == bytes`, read volatile.
#[inline(always)]
unsafe fn matches<const N: usize>(buf: *const u8, bytes: [u8; N]) -> bool {
    let mut i = 0;
    let mut same = true;
    while i < N {
        // SAFETY: the caller's buffer holds at least N bytes.
        same &= unsafe { buf.add(i).read_volatile() } == bytes[i];
        i += 1;
    }
    same
}

/// The answer in `buf` is a `Status` frame: COBS code byte, then Response::Status's tag (3).
#[inline(always)]
unsafe fn is_status(buf: *const u8) -> bool {
    // SAFETY: the caller's buffer holds at least 2 bytes.
    unsafe { buf.read_volatile() >= 2 && buf.add(1).read_volatile() == 0x03 }
}

/// Copy the frame `src` (in this app's flash) to `buf`, volatile (no `memcpy` from kernel
/// code is emitted).
#[inline(always)]
unsafe fn load<const N: usize>(buf: *mut u8, src: *const [u8; N]) {
    let src = src.cast::<u8>();
    let mut i = 0;
    while i < N {
        // SAFETY: `src` is N bytes of this app's flash; the caller's buffer holds N bytes.
        unsafe { buf.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
}

/// The well-behaved app (slot 0, `publish_test` in the manifest): `Hello`, `Subscribe` to its
/// `get`, `Subscribe` to `ceshi` (not granted), a QoS 1 `Publish` to its `update`, `Status`;
/// each answer checked byte by byte; its FP registers checked after each call and after two
/// preemptions (see the module docs).
#[unsafe(link_section = ".greeter_text")]
unsafe extern "C" fn greeter_main(_: u32) -> ! {
    const CAP: u32 = 96;
    /// Rounds of [`spin_until_preempted`] (about 200 instructions each) before giving up:
    /// seconds of QEMU time, where a slice is 10 ms.
    const SPIN_LIMIT: u32 = 1 << 24;
    let mut buf = core::mem::MaybeUninit::<[u8; CAP as usize]>::uninit();
    let p = buf.as_mut_ptr().cast::<u8>();
    let mut fp_words = core::mem::MaybeUninit::<[u32; 32]>::uninit();
    let fp = fp_words.as_mut_ptr().cast::<u32>();
    // SAFETY: `buf` is CAP bytes and `fp_words` 32 words on this app's stack, in its RAM; the
    // frames are statics in its flash.
    unsafe {
        if !fp_holds(fp, 0, 0, true) {
            exit(greeter_exit::FP_NOT_CLEAN);
        }
        let mut i = 0;
        while i < 32 {
            fp.add(i as usize)
                .write_volatile(fp_pattern(GREETER_FP_SEED, i));
            i += 1;
        }
        fp_load(fp, GREETER_FPSCR);
        // Macros, not closures: a closure would be its own function, outside this section.
        macro_rules! after_call {
            () => {
                if !fp_holds(fp, GREETER_FP_SEED, GREETER_FPSCR, false) {
                    exit(greeter_exit::FP_LOST_AT_SYSCALL);
                }
            };
        }
        macro_rules! preempted {
            () => {
                if !spin_until_preempted(SPIN_LIMIT) {
                    exit(greeter_exit::NOT_PREEMPTED);
                }
                if !fp_holds(fp, GREETER_FP_SEED, GREETER_FPSCR, false) {
                    exit(greeter_exit::FP_LOST_AT_PREEMPTION);
                }
            };
        }
        // Hello { major: 2, minor: 2 } (written against minor 2; a newer kernel serves it) =
        // postcard [00 02 02] = COBS [01 03 02 02 00].
        put(p, [0x01, 0x03, 0x02, 0x02, 0x00]);
        let n = command(p, 5, CAP);
        after_call!();
        // Welcome { major: 2, minor: 3 (the kernel's), app_id: 0 } = [01 02 03 00]
        // = COBS [04 01 02 03 01 00].
        if n != 6 || !matches(p, [0x04, 0x01, 0x02, 0x03, 0x01, 0x00]) {
            exit(greeter_exit::BAD_WELCOME);
        }
        preempted!();
        load(p, &raw const SUBSCRIBE_GET);
        let n = command(p, 41, CAP);
        after_call!();
        // Accepted { token: 1 } = [02 01] = COBS [03 02 01 00].
        if n != 4 || !matches(p, [0x03, 0x02, 0x01, 0x00]) {
            exit(greeter_exit::BAD_SUBSCRIBE);
        }
        load(p, &raw const SUBSCRIBE_CESHI);
        let n = command(p, 43, CAP);
        after_call!();
        // Error(NotPermitted) = [06 02] = COBS [03 06 02 00].
        if n != 4 || !matches(p, [0x03, 0x06, 0x02, 0x00]) {
            exit(greeter_exit::ACL_NOT_ENFORCED);
        }
        load(p, &raw const PUBLISH_UPDATE);
        let n = command(p, 50, CAP);
        after_call!();
        // Accepted { token: 3 } = [02 03] = COBS [03 02 03 00].
        if n != 4 || !matches(p, [0x03, 0x02, 0x03, 0x00]) {
            exit(greeter_exit::BAD_PUBLISH);
        }
        preempted!();
        // Status = [04] = COBS [02 04 00].
        put(p, [0x02, 0x04, 0x00]);
        let n = command(p, 3, CAP);
        after_call!();
        // Status(LinkStatus { connected: false, connects: 0, pending_publishes: 1,
        // NotNeeded, Idle }) = [03 00 00 01 00 00] = COBS [02 03 01 02 01 01 01 00].
        if n != 8 || !matches(p, [0x02, 0x03, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00]) {
            exit(greeter_exit::BAD_STATUS);
        }
        exit(greeter_exit::OK)
    }
}

/// The hostile app: `act` (a [`hostile_act`]) picks what it tries. Syscall abuse must be
/// refused; every memory access outside its own regions, and executing its RAM, must fault.
#[unsafe(link_section = ".hostile_text")]
unsafe extern "C" fn hostile_main(act: u32) -> ! {
    let mut buf = core::mem::MaybeUninit::<[u8; 16]>::uninit();
    let p = buf.as_mut_ptr().cast::<u8>();
    // SAFETY: deliberately hostile; the kernel and the MPU must contain every step.
    unsafe {
        let marker = (&raw const crate::__hostile_ram_start)
            .cast::<u32>()
            .cast_mut();
        if marker.read_volatile() != 0 {
            exit(hostile_exit::LEAKED);
        }
        marker.write_volatile(HOSTILE_MARKER);
        match act {
            hostile_act::ATTACK_KERNEL => {
                let target = crate::KERNEL_SECRET.as_ptr();
                if command(target.cast::<u8>(), 3, 16) != 0xFFFF_FFFF {
                    exit(hostile_exit::KERNEL_BUFFER_ACCEPTED);
                }
                put(p, [0x02, 0x04, 0x00]);
                if command(p, 40, 16) != 0xFFFF_FFFE {
                    exit(hostile_exit::LONG_REQUEST_ACCEPTED);
                }
                target.write_volatile(0xBAD0_BAD0);
                exit(hostile_exit::KERNEL_WRITE_SUCCEEDED)
            }
            hostile_act::READ_OTHER_APP => {
                let other = (&raw const crate::__greeter_ram_start).cast::<u32>();
                let _stolen = other.read_volatile();
                exit(hostile_exit::OTHER_APP_READ_SUCCEEDED)
            }
            hostile_act::EXECUTE_RAM => {
                // `bx lr` (0x4770) written to its own stack, then called.
                put(p, [0x70, 0x47]);
                let code: extern "C" fn() = core::mem::transmute(p as usize | 1);
                code();
                exit(hostile_exit::RAM_EXECUTED)
            }
            hostile_act::SPIN => {
                // Fill r1-r12 with known words and check them forever: a preemption that does
                // not restore the app's whole context (the frame's r1-r3 and r12, the kernel's
                // copy of r4-r11) makes it exit CONTEXT_LOST. r6 and r7 cannot be asm
                // operands, so the loop is one block that never returns.
                asm!(
                    "mov.w r1, #0x11111111",
                    "mov.w r2, #0x22222222",
                    "mov.w r3, #0x33333333",
                    "mov.w r4, #0x44444444",
                    "mov.w r5, #0x55555555",
                    "mov.w r6, #0x66666666",
                    "mov.w r7, #0x77777777",
                    "mov.w r8, #0x88888888",
                    "mov.w r9, #0x99999999",
                    "mov.w r10, #0xAAAAAAAA",
                    "mov.w r11, #0xBBBBBBBB",
                    "mov.w r12, #0xCCCCCCCC",
                    "2:",
                    "cmp.w r1, #0x11111111",
                    "bne 3f",
                    "cmp.w r2, #0x22222222",
                    "bne 3f",
                    "cmp.w r3, #0x33333333",
                    "bne 3f",
                    "cmp.w r4, #0x44444444",
                    "bne 3f",
                    "cmp.w r5, #0x55555555",
                    "bne 3f",
                    "cmp.w r6, #0x66666666",
                    "bne 3f",
                    "cmp.w r7, #0x77777777",
                    "bne 3f",
                    "cmp.w r8, #0x88888888",
                    "bne 3f",
                    "cmp.w r9, #0x99999999",
                    "bne 3f",
                    "cmp.w r10, #0xAAAAAAAA",
                    "bne 3f",
                    "cmp.w r11, #0xBBBBBBBB",
                    "bne 3f",
                    "cmp.w r12, #0xCCCCCCCC",
                    "bne 3f",
                    "b 2b",
                    "3:",
                    "mov.w r0, #{lost}",
                    "svc 1",
                    lost = const hostile_exit::CONTEXT_LOST,
                    options(noreturn, nostack),
                )
            }
            hostile_act::OVERFLOW => {
                dive(0);
                exit(hostile_exit::OVERFLOW_SURVIVED)
            }
            hostile_act::FLOOD | hostile_act::FLOOD_LIVE => {
                // The kernel answers nothing but Hello before a Hello. Hello { 2, 2 } ->
                // Welcome { 2, 3, app_id: 1 } = [01 02 03 01] = COBS [05 01 02 03 01 00].
                put(p, [0x01, 0x03, 0x02, 0x02, 0x00]);
                if command(p, 5, 16) != 6 || !matches(p, [0x05, 0x01, 0x02, 0x03, 0x01, 0x00]) {
                    exit(hostile_exit::FLOOD_WRONG_ANSWER);
                }
                let kernel = crate::KERNEL_SECRET.as_ptr().cast::<u8>();
                let mut i = 0;
                let mut until_bad = hostile_act::FLOOD_BAD_EVERY;
                while i < hostile_act::FLOOD_CALLS {
                    until_bad -= 1;
                    let ok = if until_bad == 0 {
                        until_bad = hostile_act::FLOOD_BAD_EVERY;
                        command(kernel, 3, 16) == 0xFFFF_FFFF
                    } else {
                        put(p, [0x02, 0x04, 0x00]);
                        let n = command(p, 3, 16);
                        if act == hostile_act::FLOOD {
                            n == 8 && matches(p, [0x02, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00])
                        } else {
                            // A Status frame: its first postcard byte (COBS keeps it) is
                            // Response::Status's tag, 3. (No `Range::contains`: app code must
                            // not call into the kernel's copy of core.)
                            let long_enough = n >= 3;
                            long_enough && n < 16 && is_status(p)
                        }
                    };
                    if !ok {
                        exit(hostile_exit::FLOOD_WRONG_ANSWER);
                    }
                    i += 1;
                }
                exit(hostile_exit::FLOOD_DONE)
            }
            _ => exit(hostile_exit::UNKNOWN_ACT),
        }
    }
}

/// Recurse with a 64-byte frame of stack each level until something stops it.
#[inline(never)]
#[unsafe(link_section = ".hostile_text")]
unsafe fn dive(depth: u32) -> u32 {
    let mut pad = core::mem::MaybeUninit::<[u32; 16]>::uninit();
    let p = pad.as_mut_ptr().cast::<u32>();
    // SAFETY: `pad` is this frame's own stack memory.
    unsafe { p.write_volatile(depth) };
    if depth == u32::MAX {
        return 0;
    }
    // SAFETY: deliberately unbounded; PSPLIM must stop it.
    let below = unsafe { dive(depth + 1) };
    // SAFETY: as above.
    below.wrapping_add(unsafe { p.read_volatile() })
}

/// Never runs: its header names an ABI major the kernel does not speak.
#[unsafe(link_section = ".stale_text")]
unsafe extern "C" fn stale_main(_: u32) -> ! {
    // SAFETY: exit never returns.
    unsafe { exit(0) }
}
