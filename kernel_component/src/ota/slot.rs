//! The update slot as the OTA task sees it (spec §3, issue 8 point 2): the board lends a
//! [`Sink`] over the slot for one download, asks its boot stage to swap a downloaded image in
//! at the next boot, and confirms the running image after a login. The A/B logic itself is
//! the board's boot stage (`aliot-boot` over `embassy-boot`); the kernel only says when.

use super::download::Sink;

/// A board's update slot and boot stage, for [`super::task::run_updates`].
pub trait UpdateSlot {
    /// Writes one download into the slot.
    type Writer<'a>: Sink
    where
        Self: 'a;
    /// A writer for a new download of `len` bytes, from offset 0. Refused while the running
    /// image is unconfirmed: the next boot would revert, so a download would be lost.
    fn writer(&mut self, len: u32) -> Result<Self::Writer<'_>, SlotError>;
    /// Applies a differential package ([`super::delta`]) as it downloads: reads the running
    /// image from the active slot and writes the new one into the update slot. Refused while
    /// the running image is unconfirmed, like [`UpdateSlot::writer`].
    type Patcher<'a>: Sink
    where
        Self: 'a;
    /// A patcher for a new download.
    fn patcher(&mut self) -> Result<Self::Patcher<'_>, SlotError>;
    /// The slot holds a whole download whose digest matched the job's: check the image
    /// (header, its own digest, that it fits) and ask the boot stage to swap it in at the
    /// next boot. Returns the image's version.
    fn mark_updated(&mut self) -> Result<heapless::String<32>, SlotError>;
    /// Confirms the running image, so the next boot keeps it.
    fn confirm(&mut self) -> Result<(), SlotError>;
}

/// Why the update slot refused.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The running image is on trial (not confirmed yet): no update may be written.
    NotConfirmed,
    /// The downloaded file is not a valid image for this device (header, digest or size).
    InvalidImage,
    /// The flash failed.
    Flash,
}

impl SlotError {
    /// The progress `step` to report (spec §3): -1 upgrade failed, -3 verification failed,
    /// -4 flash write failed.
    pub fn step(self) -> i8 {
        match self {
            SlotError::NotConfirmed => -1,
            SlotError::InvalidImage => -3,
            SlotError::Flash => -4,
        }
    }

    /// The `desc` to report.
    pub fn desc(self) -> &'static str {
        match self {
            SlotError::NotConfirmed => {
                "the running image is not confirmed yet (it confirms after its first login); try again later"
            }
            SlotError::InvalidImage => {
                "the file is not a valid firmware image for this device (make it with aliot-imgtool)"
            }
            SlotError::Flash => "writing the update slot failed",
        }
    }
}
