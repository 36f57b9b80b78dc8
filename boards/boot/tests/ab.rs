//! A/B boot over a RAM-backed NOR flash: update, trial, revert, confirm, refusal of bad
//! images, and a power cut at every flash write and erase of each step.
//!
//! The RAM flash is written here because the test needs to cut the power at an exact
//! write/erase and leave that operation half done; embassy-boot's own `MemFlash` is private
//! to its tests and sequential-storage's mock flash is async-only (behind a `_test` feature).

use std::cell::RefCell;

use aliot_boot::image::{ImageError, ImageHeader};
use aliot_boot::stage::{
    BootKind, BootStage, BootStageError, Booted, LayoutError, Partition, partitions_from_config,
};
use aliot_kernel::config::{FlashPartition, OtaConfig};
use embassy_boot::{BlockingFirmwareState, State};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

const WRITE: usize = 4;
const PAGE: usize = 4096;
const BUF: usize = 256;

/// NOR flash in RAM: erase sets 0xFF, writes can only clear bits. With `cut_at = Some(n)`,
/// the n-th write/erase (from 0) is done halfway and the power is then off: it and every later
/// operation fail until [`RamFlash::power_on`].
#[derive(Clone)]
struct RamFlash {
    data: Vec<u8>,
    ops: usize,
    cut_at: Option<usize>,
    off: bool,
}

#[derive(Debug)]
struct PowerCut;
impl NorFlashError for PowerCut {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

impl RamFlash {
    fn new(size: usize) -> Self {
        Self {
            data: vec![0xFF; size],
            ops: 0,
            cut_at: None,
            off: false,
        }
    }
    fn power_on(&mut self) {
        self.off = false;
        self.cut_at = None;
    }
    /// Counts a write/erase; `Some(len)` = the power goes now, do only `len` bytes of it.
    fn step(&mut self, len: usize, unit: usize) -> Result<Option<usize>, PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        let n = self.ops;
        self.ops += 1;
        if self.cut_at == Some(n) {
            self.off = true;
            return Ok(Some(len / 2 / unit * unit));
        }
        Ok(None)
    }
}

impl ErrorType for RamFlash {
    type Error = PowerCut;
}
impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        let o = offset as usize;
        bytes.copy_from_slice(&self.data[o..o + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.data.len()
    }
}
impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), PowerCut> {
        let (f, t) = (from as usize, to as usize);
        assert!(f.is_multiple_of(PAGE) && t.is_multiple_of(PAGE) && f <= t && t <= self.data.len());
        match self.step(t - f, 1)? {
            None => self.data[f..t].fill(0xFF),
            Some(done) => {
                self.data[f..f + done].fill(0xFF);
                return Err(PowerCut);
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), PowerCut> {
        let o = offset as usize;
        assert!(o.is_multiple_of(WRITE) && bytes.len().is_multiple_of(WRITE));
        let (n, cut) = match self.step(bytes.len(), WRITE)? {
            None => (bytes.len(), false),
            Some(done) => (done, true),
        };
        for (d, s) in self.data[o..o + n].iter_mut().zip(bytes) {
            *d &= *s;
        }
        if cut { Err(PowerCut) } else { Ok(()) }
    }
}

/// Bootloader 1 page, active 4 pages, update 5 pages, state 1 page.
const LAYOUT: OtaConfig = OtaConfig {
    version: "1.0.0",
    module: "default",
    bootloader: FlashPartition {
        offset: 0,
        size: 4096,
        erase_page: 4096,
    },
    active: FlashPartition {
        offset: 4096,
        size: 4 * 4096,
        erase_page: 4096,
    },
    update: FlashPartition {
        offset: 5 * 4096,
        size: 5 * 4096,
        erase_page: 4096,
    },
    boot_state: FlashPartition {
        offset: 10 * 4096,
        size: 4096,
        erase_page: 4096,
    },
};
const FLASH_SIZE: usize = 11 * 4096;
const ACTIVE_PAGES: usize = 4;

type Stage<'a> =
    BootStage<Partition<'a, RamFlash>, Partition<'a, RamFlash>, Partition<'a, RamFlash>, BUF>;

struct Device {
    flash: Mutex<NoopRawMutex, RefCell<RamFlash>>,
}

fn image(version: &str, payload_len: usize, seed: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
        .collect();
    let mut out = ImageHeader::new(version, &payload)
        .unwrap()
        .to_bytes()
        .to_vec();
    out.extend_from_slice(&payload);
    out
}

/// v1 and v2 both span every page of the active slot (the swap moves all of them).
fn v1() -> Vec<u8> {
    image("1.0.0", 15_000, 3)
}
fn v2() -> Vec<u8> {
    image("2.0.0", 15_800, 7)
}

impl Device {
    /// Factory state: `img` programmed into the active slot, state erased.
    fn factory(img: &[u8]) -> Self {
        let mut f = RamFlash::new(FLASH_SIZE);
        let a = LAYOUT.active.offset as usize;
        f.data[a..a + img.len()].copy_from_slice(img);
        Self::from_flash(f)
    }
    fn from_flash(f: RamFlash) -> Self {
        Self {
            flash: Mutex::new(RefCell::new(f)),
        }
    }
    fn snapshot(&self) -> RamFlash {
        self.flash.lock(|f| f.borrow().clone())
    }
    fn stage(&self) -> Stage<'_> {
        let (a, d, s) = partitions_from_config(&self.flash, FLASH_SIZE as u32, &LAYOUT).unwrap();
        BootStage::new(a, d, s).unwrap()
    }
    fn boot(&self) -> Result<Booted, BootStageError> {
        self.stage().boot()
    }
    fn ops(&self) -> usize {
        self.flash.lock(|f| f.borrow().ops)
    }
    fn cut_at(&self, n: usize) {
        self.flash.lock(|f| {
            let mut f = f.borrow_mut();
            f.ops = 0;
            f.cut_at = Some(n);
        })
    }
    fn power_on(&self) {
        self.flash.lock(|f| f.borrow_mut().power_on())
    }
    fn reset_ops(&self) {
        self.flash.lock(|f| f.borrow_mut().ops = 0)
    }
    fn download(&self, img: &[u8]) {
        let mut st = self.stage();
        let mut w = st.update_writer().unwrap();
        for (i, chunk) in img.chunks(1000).enumerate() {
            w.write(i * 1000, chunk).unwrap();
        }
    }
    /// Sets embassy-boot's swap magic directly, without our check (a buggy or hostile updater).
    fn force_mark_updated(&self) {
        let (_, _, s) = partitions_from_config(&self.flash, FLASH_SIZE as u32, &LAYOUT).unwrap();
        let mut aligned = [0u8; WRITE];
        BlockingFirmwareState::new(s, &mut aligned)
            .mark_updated()
            .unwrap();
    }
}

fn version(b: &Booted) -> &str {
    b.image.version.as_str()
}

#[test]
fn update_trial_revert_confirm() {
    let dev = Device::factory(&v1());
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));

    dev.download(&v2());
    assert_eq!(
        dev.stage().mark_updated().unwrap().version.as_str(),
        "2.0.0"
    );
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("2.0.0", BootKind::Trial));
    // Not confirmed: no new update may be written or marked.
    assert_eq!(
        dev.stage().update_writer().err(),
        Some(BootStageError::NotConfirmed)
    );
    assert_eq!(
        dev.stage().mark_updated(),
        Err(BootStageError::NotConfirmed)
    );

    // Reboot without confirming: v1 is back.
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Reverted));
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));

    // Again, and this time confirm.
    dev.download(&v2());
    dev.stage().mark_updated().unwrap();
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("2.0.0", BootKind::Trial));
    dev.stage().mark_booted().unwrap();
    for _ in 0..2 {
        let b = dev.boot().unwrap();
        assert_eq!((version(&b), b.kind), ("2.0.0", BootKind::Normal));
    }
    assert_eq!(dev.stage().loader_state().unwrap(), State::Boot);
}

#[test]
fn corrupt_update_is_not_marked() {
    let dev = Device::factory(&v1());
    let mut bad = v2();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    dev.download(&bad);
    assert_eq!(
        dev.stage().mark_updated(),
        Err(BootStageError::InvalidUpdate(ImageError::DigestMismatch))
    );
    assert_eq!(dev.stage().loader_state().unwrap(), State::Boot);
    let b = dev.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));

    // An image that would not fit the active slot, though it fits the (larger) update slot.
    let dev = Device::factory(&v1());
    let big = image("3.0.0", 4 * 4096 - 512 + 4, 5);
    dev.download(&big);
    assert_eq!(
        dev.stage().mark_updated(),
        Err(BootStageError::InvalidUpdate(ImageError::TooLarge {
            image_len: 4 * 4096 + 4,
            slot_len: 4 * 4096
        }))
    );
    // Nothing downloaded at all.
    let dev = Device::factory(&v1());
    assert_eq!(
        dev.stage().mark_updated(),
        Err(BootStageError::InvalidUpdate(ImageError::BadMagic))
    );
}

/// A swap requested behind our back with a corrupt image: the boot stage must not run it.
fn forced_corrupt_swap(corrupt: impl Fn(&mut Vec<u8>)) -> Device {
    let dev = Device::factory(&v1());
    let mut bad = v2();
    corrupt(&mut bad);
    dev.download(&bad);
    dev.force_mark_updated();
    dev
}

#[test]
fn corrupt_swapped_image_is_refused_and_reverted() {
    type Corrupt = fn(&mut Vec<u8>);
    let cases: [(Corrupt, ImageError); 3] = [
        (|b| b[9000] ^= 1, ImageError::DigestMismatch),
        (|b| b[20] ^= 1, ImageError::BadHeaderChecksum),
        (|b| b[0] = 0, ImageError::BadMagic),
    ];
    for (corrupt, err) in cases {
        let dev = forced_corrupt_swap(corrupt);
        let b = dev.boot().unwrap();
        assert_eq!(version(&b), "1.0.0");
        assert_eq!(b.kind, BootKind::RefusedUpdate(err));
        let b = dev.boot().unwrap();
        assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));
        // And the device can take a good update afterwards.
        dev.download(&v2());
        dev.stage().mark_updated().unwrap();
        assert_eq!(dev.boot().unwrap().kind, BootKind::Trial);
    }
}

#[test]
fn no_valid_image_is_an_error() {
    let dev = Device::from_flash(RamFlash::new(FLASH_SIZE));
    assert_eq!(
        dev.boot(),
        Err(BootStageError::NoValidImage(ImageError::BadMagic))
    );
    let mut img = v1();
    img[600] ^= 1;
    let dev = Device::factory(&img);
    assert_eq!(
        dev.boot(),
        Err(BootStageError::NoValidImage(ImageError::DigestMismatch))
    );
}

/// Runs `step` on a copy of `start` with the power cut at write/erase 0, 1, 2, ... until a
/// run completes without reaching the cut; after each cut the power comes back and `check`
/// sees the device. Returns the number of cut points.
fn every_cut(
    start: &RamFlash,
    step: impl Fn(&Device) -> Result<(), BootStageError>,
    check: impl Fn(&Device, usize),
) -> usize {
    // The uncut run: how many writes/erases the step makes.
    let dev = Device::from_flash(start.clone());
    dev.reset_ops();
    step(&dev).unwrap();
    let total = dev.ops();
    for n in 0.. {
        let dev = Device::from_flash(start.clone());
        dev.cut_at(n);
        match step(&dev) {
            Ok(()) => {
                assert_eq!(n, total, "a run finished before its last operation");
                return n;
            }
            Err(BootStageError::Flash(NorFlashErrorKind::Other)) => {}
            Err(e) => panic!("cut {n}: {e:?}"),
        }
        dev.power_on();
        check(&dev, n);
    }
    unreachable!()
}

fn boot_ok(dev: &Device) -> Result<(), BootStageError> {
    dev.boot().map(|_| ())
}

#[test]
fn power_cut_during_swap() {
    let dev = Device::factory(&v1());
    dev.download(&v2());
    dev.stage().mark_updated().unwrap();
    let start = dev.snapshot();
    let cuts = every_cut(&start, boot_ok, |dev, n| {
        // The swap resumes: v2 on trial; unconfirmed, the next boot brings v1 back.
        let b = dev.boot().unwrap_or_else(|e| panic!("cut {n}: {e:?}"));
        assert_eq!((version(&b), b.kind), ("2.0.0", BootKind::Trial), "cut {n}");
        let b = dev.boot().unwrap();
        assert_eq!(
            (version(&b), b.kind),
            ("1.0.0", BootKind::Reverted),
            "cut {n}"
        );
    });
    // Per page: v1's page to DFU, v2's page to active; each copy is 1 erase + PAGE/BUF
    // writes + 1 progress word.
    assert_eq!(cuts, ACTIVE_PAGES * 2 * (1 + PAGE / BUF + 1));
    assert_eq!(cuts, 144);
}

#[test]
fn power_cut_during_revert() {
    let dev = Device::factory(&v1());
    dev.download(&v2());
    dev.stage().mark_updated().unwrap();
    assert_eq!(dev.boot().unwrap().kind, BootKind::Trial);
    let start = dev.snapshot();
    let cuts = every_cut(&start, boot_ok, |dev, n| {
        let b = dev.boot().unwrap_or_else(|e| panic!("cut {n}: {e:?}"));
        assert_eq!(version(&b), "1.0.0", "cut {n}");
    });
    // The copies as for the swap, then: invalidate progress, erase state, write the magic.
    assert_eq!(cuts, ACTIVE_PAGES * 2 * (1 + PAGE / BUF + 1) + 3);
}

#[test]
fn power_cut_during_refused_update() {
    let start = forced_corrupt_swap(|b| b[9000] ^= 1).snapshot();
    let cuts = every_cut(&start, boot_ok, |dev, n| {
        let b = dev.boot().unwrap_or_else(|e| panic!("cut {n}: {e:?}"));
        assert_eq!(version(&b), "1.0.0", "cut {n}");
    });
    // Swap, then the revert.
    assert_eq!(cuts, 2 * ACTIVE_PAGES * 2 * (1 + PAGE / BUF + 1) + 3);
}

#[test]
fn power_cut_during_mark_updated_and_mark_booted() {
    let dev = Device::factory(&v1());
    dev.download(&v2());
    let start = dev.snapshot();
    let mark = |dev: &Device| dev.stage().mark_updated().map(|_| ());
    let cuts = every_cut(&start, mark, |dev, n| {
        let b = dev.boot().unwrap_or_else(|e| panic!("cut {n}: {e:?}"));
        assert!(["1.0.0", "2.0.0"].contains(&version(&b)), "cut {n}: {b:?}");
    });
    // Invalidate progress (only when valid: it is, on an erased state), erase, magic.
    assert_eq!(cuts, 3);

    dev.stage().mark_updated().unwrap();
    assert_eq!(dev.boot().unwrap().kind, BootKind::Trial);
    let start = dev.snapshot();
    let confirm = |dev: &Device| dev.stage().mark_booted();
    let cuts = every_cut(&start, confirm, |dev, n| {
        let b = dev.boot().unwrap_or_else(|e| panic!("cut {n}: {e:?}"));
        assert!(["1.0.0", "2.0.0"].contains(&version(&b)), "cut {n}: {b:?}");
    });
    assert_eq!(cuts, 3);
}

/// A second cut while recovering from the first: still never without a valid image.
#[test]
fn power_cut_twice_during_swap() {
    let dev = Device::factory(&v1());
    dev.download(&v2());
    dev.stage().mark_updated().unwrap();
    let start = dev.snapshot();
    let mut pairs = 0;
    for first in 0..144 {
        let dev = Device::from_flash(start.clone());
        dev.cut_at(first);
        assert!(dev.boot().is_err());
        dev.power_on();
        let after_first = dev.snapshot();
        for second in (0..150).step_by(7) {
            let dev = Device::from_flash(after_first.clone());
            dev.cut_at(second);
            let b = match dev.boot() {
                Ok(b) => b, // the second cut came after the swap's last operation
                Err(_) => {
                    pairs += 1;
                    dev.power_on();
                    dev.boot()
                        .unwrap_or_else(|e| panic!("cuts {first}, {second}: {e:?}"))
                }
            };
            assert_eq!(
                (version(&b), b.kind),
                ("2.0.0", BootKind::Trial),
                "cuts {first}, {second}"
            );
        }
    }
    // 144 first cuts × 22 second cut points, of which 1728 fall before the recovery ends.
    assert_eq!(pairs, 1728);
}

#[test]
fn layout_requirements() {
    type S<'a> =
        BootStage<Partition<'a, RamFlash>, Partition<'a, RamFlash>, Partition<'a, RamFlash>, BUF>;
    let flash = Mutex::<NoopRawMutex, _>::new(RefCell::new(RamFlash::new(64 * 4096)));
    let p = |page: u32, pages: u32| Partition::new(&flash, page * 4096, pages * 4096);
    assert!(S::new(p(0, 4), p(4, 5), p(9, 1)).is_ok());
    assert_eq!(
        S::new(p(0, 4), p(4, 4), p(9, 1)).err(),
        Some(LayoutError::DfuTooSmall {
            active: 4 * 4096,
            dfu: 4 * 4096,
            page: 4096
        })
    );
    assert_eq!(
        S::new(p(0, 5), p(5, 4), p(9, 1)).err(),
        Some(LayoutError::DfuTooSmall {
            active: 5 * 4096,
            dfu: 4 * 4096,
            page: 4096
        })
    );
    // 1 page of state = 1024 words: enough for 255 active pages (2 + 4 × 255 = 1022), not 256.
    assert!(S::new(p(0, 1), p(1, 2), p(3, 1)).is_ok());
    let big = Mutex::<NoopRawMutex, _>::new(RefCell::new(RamFlash::new(520 * 4096)));
    let q = |page: u32, pages: u32| Partition::new(&big, page * 4096, pages * 4096);
    assert!(S::new(q(0, 255), q(255, 256), q(511, 1)).is_ok());
    assert_eq!(
        S::new(q(0, 256), q(256, 257), q(513, 1)).err(),
        Some(LayoutError::StateTooSmall {
            needed_words: 1026,
            words: 1024
        })
    );
    // The aligned buffer must divide the page.
    type S3000<'a> =
        BootStage<Partition<'a, RamFlash>, Partition<'a, RamFlash>, Partition<'a, RamFlash>, 3000>;
    assert_eq!(
        S3000::new(p(0, 4), p(4, 5), p(9, 1)).err(),
        Some(LayoutError::BadBuffer { len: 3000 })
    );
    type S2<'a> =
        BootStage<Partition<'a, RamFlash>, Partition<'a, RamFlash>, Partition<'a, RamFlash>, 2>;
    assert_eq!(
        S2::new(p(0, 4), p(4, 5), p(9, 1)).err(),
        Some(LayoutError::BadBuffer { len: 2 })
    );
}

#[test]
fn partitions_from_config_checks() {
    let flash = Mutex::<NoopRawMutex, _>::new(RefCell::new(RamFlash::new(FLASH_SIZE)));
    assert!(partitions_from_config(&flash, FLASH_SIZE as u32, &LAYOUT).is_ok());
    let mut c = LAYOUT;
    c.update.offset += 4; // not on a page
    assert_eq!(
        partitions_from_config(&flash, FLASH_SIZE as u32, &c).err(),
        Some(LayoutError::Misaligned {
            partition: "update"
        })
    );
    let mut c = LAYOUT;
    c.boot_state.offset = 9 * 4096; // inside update
    assert_eq!(
        partitions_from_config(&flash, FLASH_SIZE as u32, &c).err(),
        Some(LayoutError::Overlap {
            a: "update",
            b: "boot_state"
        })
    );
    let mut c = LAYOUT;
    c.update.offset = 0xFFFF_F000; // its end past u32::MAX
    c.update.size = 0x2000;
    assert_eq!(
        partitions_from_config(&flash, FLASH_SIZE as u32, &c).err(),
        Some(LayoutError::OutOfFlash {
            partition: "update"
        })
    );
    assert_eq!(
        partitions_from_config(&flash, FLASH_SIZE as u32 - 4096, &LAYOUT).err(),
        Some(LayoutError::OutOfFlash {
            partition: "boot_state"
        })
    );
}

/// The nRF9160 default layout (`aliot_kernel::config::NRF9160_OTA`, what the manifest
/// generates by default) meets every requirement with 4-byte writes and 4096-byte pages.
#[test]
fn nrf9160_default_layout_is_accepted() {
    let ota = aliot_kernel::config::NRF9160_OTA;
    let flash = Mutex::<NoopRawMutex, _>::new(RefCell::new(RamFlash::new(0x100000)));
    let (a, d, s) = partitions_from_config(&flash, 0x100000, &ota).unwrap();
    assert!(Stage::new(a, d, s).is_ok());
}

/// Runs a future that never waits (the slot writer's are synchronous) to its end.
fn at_once<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the slot writer waited"),
    }
}

#[test]
fn a_work_buffer_larger_than_the_header_reads_the_payload_after_it() {
    // Found end to end: with a page-sized buffer the first read holds the header and the
    // payload's start, and the payload's start used to be skipped (digest mismatch).
    let dev = Device::factory(&v1());
    let (a, d, s) = partitions_from_config(&dev.flash, FLASH_SIZE as u32, &LAYOUT).unwrap();
    let mut stage: BootStage<_, _, _, PAGE> = BootStage::new(a, d, s).unwrap();
    assert_eq!(stage.verify_active().unwrap().version.as_str(), "1.0.0");
    let b = stage.boot().unwrap();
    assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));
}

mod ota_slot {
    use aliot_kernel::ota::download::{Sink, SinkError};
    use aliot_kernel::ota::slot::{SlotError, UpdateSlot};

    use super::*;

    /// Pieces of awkward lengths: odd, word-straddling, page-straddling.
    const PIECES: [usize; 8] = [1, 3, 5, 4_090, 4_097, 7, 2_048, 1_500];

    fn write_in_pieces<S: Sink>(w: &mut S, img: &[u8]) {
        let (mut at, mut i) = (0, 0);
        while at < img.len() {
            let n = PIECES[i % PIECES.len()].min(img.len() - at);
            at_once(w.write(at as u32, &img[at..at + n])).unwrap();
            at += n;
            i += 1;
        }
    }

    #[test]
    fn pieces_of_any_length_make_an_image_that_marks_boots_and_confirms() {
        let dev = Device::factory(&v1());
        // The second is not a whole number of words: its tail is padded.
        let odd = image("2.0.1", 15_801, 9);
        assert_ne!(odd.len() % WRITE, 0);
        for (img, expected) in [(v2(), "2.0.0"), (odd, "2.0.1")] {
            let mut st = dev.stage();
            let mut w = UpdateSlot::writer(&mut st, img.len() as u32).unwrap();
            write_in_pieces(&mut w, &img);
            let v = UpdateSlot::mark_updated(&mut st).unwrap();
            assert_eq!(v.as_str(), expected);
            let b = dev.boot().unwrap();
            assert_eq!((version(&b), b.kind), (expected, BootKind::Trial));
            let mut st = dev.stage();
            // On trial, no download may start.
            assert_eq!(
                UpdateSlot::writer(&mut st, 10).err(),
                Some(SlotError::NotConfirmed)
            );
            UpdateSlot::confirm(&mut st).unwrap();
            assert_eq!(dev.boot().unwrap().kind, BootKind::Normal);
        }
    }

    #[test]
    fn a_restart_rewrites_from_zero_over_a_half_written_slot() {
        let dev = Device::factory(&v1());
        let img = v2();
        let mut st = dev.stage();
        let mut w = UpdateSlot::writer(&mut st, img.len() as u32).unwrap();
        // Half of the file, then restarts both inside page 0 and past it.
        for stop in [1_000, 9_000] {
            at_once(w.write(0, &img[..stop])).unwrap();
            at_once(w.restart()).unwrap();
        }
        write_in_pieces(&mut w, &img);
        assert_eq!(UpdateSlot::mark_updated(&mut st).unwrap().as_str(), "2.0.0");
    }

    #[test]
    fn out_of_order_oversized_and_garbage_are_refused() {
        let dev = Device::factory(&v1());
        let img = v2();
        let mut st = dev.stage();
        let mut w = UpdateSlot::writer(&mut st, 100).unwrap();
        assert_eq!(at_once(w.write(4, &img[..4])), Err(SinkError::OutOfOrder));
        assert_eq!(at_once(w.write(0, &img[..101])), Err(SinkError::Write));
        // With a tail held back (3 bytes, not a whole word): offsets count it, the end too.
        at_once(w.write(0, &img[..3])).unwrap();
        assert_eq!(at_once(w.write(4, &img[4..8])), Err(SinkError::OutOfOrder));
        assert_eq!(at_once(w.write(3, &img[3..101])), Err(SinkError::Write));
        at_once(w.write(3, &img[3..100])).unwrap();
        assert_eq!(at_once(w.write(100, &img[100..101])), Err(SinkError::Write));
        at_once(w.finish()).unwrap();
        let too_big = (ACTIVE_PAGES * PAGE + 1) as u32;
        assert_eq!(
            UpdateSlot::writer(&mut st, too_big).err(),
            Some(SlotError::InvalidImage)
        );
        // A raw binary without the image header: downloaded, but never marked.
        let raw = vec![0x42u8; 5_000];
        let mut w = UpdateSlot::writer(&mut st, raw.len() as u32).unwrap();
        write_in_pieces(&mut w, &raw);
        assert_eq!(
            UpdateSlot::mark_updated(&mut st),
            Err(SlotError::InvalidImage)
        );
        let b = dev.boot().unwrap();
        assert_eq!((version(&b), b.kind), ("1.0.0", BootKind::Normal));
    }
}
