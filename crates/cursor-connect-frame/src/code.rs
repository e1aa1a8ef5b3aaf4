//! Connect status codes and their HTTP mappings.

use std::fmt;
use std::str::FromStr;

use http::StatusCode;

/// A Connect error code (the 16 non-OK gRPC codes; success has no code on the wire).
///
/// Strings from the wire that name no code become [`Code::Unknown`] when parsed by this crate's
/// JSON readers; [`FromStr`] itself is strict and returns [`UnknownCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// `canceled`: the caller canceled the call.
    Canceled,
    /// `unknown`: no better code applies (also the fallback for unrecognised codes).
    Unknown,
    /// `invalid_argument`: the request is malformed; retrying it unchanged will fail again.
    InvalidArgument,
    /// `deadline_exceeded`: the deadline passed before the call finished.
    DeadlineExceeded,
    /// `not_found`: the requested entity does not exist.
    NotFound,
    /// `already_exists`: the entity to create already exists.
    AlreadyExists,
    /// `permission_denied`: the caller may not do this.
    PermissionDenied,
    /// `resource_exhausted`: a quota, rate limit or size limit was hit.
    ResourceExhausted,
    /// `failed_precondition`: the system is not in a state that allows this call.
    FailedPrecondition,
    /// `aborted`: the operation was aborted, typically a concurrency conflict.
    Aborted,
    /// `out_of_range`: an argument is outside the valid range.
    OutOfRange,
    /// `unimplemented`: the server does not implement this method or feature.
    Unimplemented,
    /// `internal`: an invariant was broken (also protocol violations).
    Internal,
    /// `unavailable`: the service is temporarily unavailable; usually safe to retry.
    Unavailable,
    /// `data_loss`: unrecoverable data loss or corruption.
    DataLoss,
    /// `unauthenticated`: missing or invalid credentials.
    Unauthenticated,
}

impl Code {
    /// Every code, in gRPC numeric order (1 to 16).
    pub const ALL: [Self; 16] = [
        Self::Canceled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Unauthenticated,
    ];

    /// The wire name, e.g. `"resource_exhausted"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "data_loss",
            Self::Unauthenticated => "unauthenticated",
        }
    }

    /// The gRPC numeric value (1 to 16).
    pub const fn grpc_code(self) -> u32 {
        match self {
            Self::Canceled => 1,
            Self::Unknown => 2,
            Self::InvalidArgument => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::AlreadyExists => 6,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::OutOfRange => 11,
            Self::Unimplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::DataLoss => 15,
            Self::Unauthenticated => 16,
        }
    }

    /// The HTTP status a server uses when it *writes* this code as a unary error
    /// (connect-protocol §1.4).
    pub const fn http_status(self) -> StatusCode {
        match self {
            Self::Canceled => match StatusCode::from_u16(499) {
                Ok(s) => s,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Unknown | Self::Internal | Self::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidArgument | Self::FailedPrecondition | Self::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }

    /// The code a client infers when *reading* a non-200 response that carries no usable Connect
    /// error (connect-protocol §1.5, the gRPC table; deliberately not the inverse of
    /// [`Code::http_status`]).
    pub fn from_http_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::Internal,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::Unimplemented,
            429 | 502..=504 => Self::Unavailable,
            _ => Self::Unknown,
        }
    }

    /// Parses a wire name leniently: anything that is not one of the 16 names is
    /// [`Code::Unknown`], as the conformance suite requires of clients.
    pub fn from_wire(name: &str) -> Self {
        name.parse().unwrap_or(Self::Unknown)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Code::from_str`] was given a string that names no code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown connect code {name:?}")]
pub struct UnknownCode {
    name: String,
}

impl UnknownCode {
    /// The string that was not recognised.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for Code {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for (i, code) in Code::ALL.into_iter().enumerate() {
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            assert_eq!(code.grpc_code() as usize, i + 1);
            assert_eq!(code.to_string(), code.as_str());
        }
        assert!("UNKNOWN".parse::<Code>().is_err());
        assert_eq!("ok".parse::<Code>().unwrap_err().name(), "ok");
        assert_eq!(Code::from_wire("bogus"), Code::Unknown);
    }

    #[test]
    fn http_status_table_matches_spec() {
        let want = [
            499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
        ];
        for (code, status) in Code::ALL.into_iter().zip(want) {
            assert_eq!(code.http_status().as_u16(), status, "{code}");
        }
    }
}
