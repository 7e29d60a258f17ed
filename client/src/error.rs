//! What can go wrong following a gateway, and which of it is worth retrying.
//!
//! A subscription retries whatever a later attempt may cure (the gateway restarting, a network
//! cut, a silent connection) and reports it as [`Update::Disconnected`](crate::Update); it ends
//! with an `Err` only for what no retry can cure (a bad address, a refused request or credential).

use std::time::Duration;

use tonic::Code;

/// Why a subscription attempt failed or a subscription ended.
///
/// ```
/// use streamweaver_client::ClientError;
///
/// let error = ClientError::Watchdog { silent_for: std::time::Duration::from_secs(45) };
/// assert!(!error.is_fatal(), "a silent connection is retried");
/// assert_eq!(error.to_string(), "nothing heard from the gateway for 45s");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway address is not a usable URL.
    #[error("gateway address {url:?}: {source}")]
    InvalidUrl {
        /// The address given.
        url: String,
        /// What tonic said.
        #[source]
        source: tonic::transport::Error,
    },
    /// The TLS settings cannot be used (e.g. a CA file that is not PEM).
    #[error("TLS settings: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The bearer token cannot travel in a gRPC header (it must be printable ASCII).
    #[error("the bearer token is not printable ASCII")]
    InvalidToken,
    /// No connection could be made (refused, unreachable, TLS handshake failed).
    #[error("cannot connect to the gateway: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The gateway answered with a gRPC status: refused the request, or ended the stream.
    #[error("the gateway said {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// Nothing, not even a heartbeat, came for this long: the connection is taken for dead.
    #[error("nothing heard from the gateway for {silent_for:?}")]
    Watchdog {
        /// How long the connection stayed silent.
        silent_for: Duration,
    },
    /// The gateway ended the stream without an error status.
    #[error("the gateway ended the stream")]
    StreamEnded,
    /// The gateway sent an error message on the stream.
    #[error("the gateway sent error {code}: {message}")]
    Server {
        /// The gRPC status code name, e.g. `INVALID_ARGUMENT`.
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The configured number of attempts in a row failed.
    #[error("gave up after {attempts} failed attempts in a row; the last: {last}")]
    GaveUp {
        /// How many attempts failed.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// Whether retrying cannot help: the subscription ends with this error instead of
    /// reconnecting. A gateway that refuses the request (`INVALID_ARGUMENT`), the credential
    /// (`UNAUTHENTICATED`, `PERMISSION_DENIED`) or does not serve the stream (`UNIMPLEMENTED`)
    /// will refuse it again; everything else (`UNAVAILABLE` at shutdown, `RESOURCE_EXHAUSTED`
    /// when it drops a slow subscriber, cut connections, silence) is retried.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::InvalidUrl { .. } | Self::Tls(_) | Self::InvalidToken | Self::GaveUp { .. } => {
                true
            }
            Self::Status(status) => matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::Unauthenticated
                    | Code::PermissionDenied
                    | Code::Unimplemented
                    | Code::NotFound
            ),
            Self::Server { code, .. } => matches!(
                code.as_str(),
                "INVALID_ARGUMENT" | "UNAUTHENTICATED" | "PERMISSION_DENIED"
            ),
            Self::Connect(_) | Self::Watchdog { .. } | Self::StreamEnded => false,
        }
    }

    /// The gRPC status code, when the gateway answered with one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Status(status) => Some(status.code()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_fatal_and_outages_are_not() {
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
        ] {
            assert!(ClientError::Status(tonic::Status::new(code, "no")).is_fatal());
        }
        for code in [
            Code::Unavailable,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Cancelled,
        ] {
            assert!(!ClientError::Status(tonic::Status::new(code, "later")).is_fatal());
        }
        assert!(!ClientError::StreamEnded.is_fatal());
    }
}
