//! What can go wrong in a syscall, from the app's point of view.

use aliot_abi::ErrorCode;
use core::fmt;

/// Why an [`Aliot`](crate::Aliot) call failed. `E` is the backend's transport error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError<E> {
    /// The backend could not move the frames.
    Transport(E),
    /// The kernel refused the request; nothing was sent anywhere.
    Kernel(ErrorCode),
    /// The request does not fit the frame buffer (topic or payload far too long).
    Encode,
    /// The kernel's answer is not a valid frame.
    Decode,
    /// The kernel's answer is valid but does not answer this request (wrong variant or token).
    UnexpectedResponse,
    /// The kernel speaks another ABI version than this library.
    AbiMismatch {
        /// The version the kernel announced in its `Welcome`.
        kernel: u16,
    },
}

impl<E: fmt::Debug> fmt::Display for AppError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Transport(e) => write!(f, "syscall transport failed: {e:?}"),
            AppError::Kernel(code) => write!(f, "kernel refused the request: {code:?}"),
            AppError::Encode => f.write_str("request does not fit the syscall frame buffer"),
            AppError::Decode => f.write_str("kernel answered with an undecodable frame"),
            AppError::UnexpectedResponse => {
                f.write_str("kernel's answer does not match the request")
            }
            AppError::AbiMismatch { kernel } => write!(
                f,
                "kernel speaks ABI major {kernel}, this app was built for {}",
                aliot_abi::ABI_MAJOR
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for AppError<E> {}
