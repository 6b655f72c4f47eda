//! Decides whether a failed call is worth repeating: the one table both retries and breakers consult.

/// Whether repeating the same call could succeed.
///
/// The retry loop repeats only [`Retryability::Transient`] failures, and the circuit breaker counts
/// only those as evidence of an outage: a `400 Bad Request` means our request is wrong, not that the
/// dependency is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryability {
    /// The dependency is overloaded, unreachable or slow; the same call may succeed later.
    Transient,
    /// The same call will fail the same way; repeating it only adds load.
    Permanent,
}

/// Implemented by every error that goes through [`RetryPolicy::retry`](crate::RetryPolicy::retry) or
/// [`CircuitBreaker::call`](crate::CircuitBreaker::call).
///
/// Adapters (the bus publisher, marketplace clients) implement it for their own error types, usually by
/// delegating to [`http_status`], [`grpc_code`] or the impls below.
pub trait Classify {
    fn retryability(&self) -> Retryability;
}

/// Classifies an HTTP response status.
///
/// Timeouts (408), "too early" (425), rate limiting (429) and server errors are transient. 501 and 505
/// are server errors that describe a permanent capability gap, so repeating the call cannot help. Every
/// other status, including 2xx/3xx that reach an error path, is permanent.
pub fn http_status(status: u16) -> Retryability {
    match status {
        408 | 425 | 429 => Retryability::Transient,
        501 | 505 => Retryability::Permanent,
        500..=599 => Retryability::Transient,
        _ => Retryability::Permanent,
    }
}

/// Classifies a gRPC status code.
///
/// Deliberately exhaustive with no catch-all arm: if tonic adds a code, this stops compiling until
/// someone decides whether it is safe to repeat.
pub fn grpc_code(code: tonic::Code) -> Retryability {
    use tonic::Code;
    match code {
        // The server never started the work, or asked us to back off.
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => Retryability::Transient,
        // Our APIs return ABORTED for optimistic-concurrency conflicts: the caller must re-read
        // the entity and decide again, so blindly repeating the same write is wrong.
        Code::Aborted => Retryability::Permanent,
        // The server may have done part of the work; assuming a repeat is harmless is not safe.
        Code::Internal | Code::Unknown => Retryability::Permanent,
        // The request itself is wrong or not allowed; it will fail the same way again.
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Cancelled => Retryability::Permanent,
        // Not a failure at all; nothing to repeat.
        Code::Ok => Retryability::Permanent,
    }
}

impl Classify for tonic::Status {
    fn retryability(&self) -> Retryability {
        grpc_code(self.code())
    }
}

impl Classify for reqwest::Error {
    fn retryability(&self) -> Retryability {
        ReqwestFailure::of(self).retryability()
    }
}

/// What went wrong in a reqwest call, as far as repeating it is concerned. A separate type so the
/// decision is an exhaustive match (and testable: reqwest errors cannot be built outside reqwest).
#[derive(Debug, Clone, Copy)]
enum ReqwestFailure {
    /// The server answered with this status (`error_for_status`).
    Status(u16),
    Timeout,
    Connect,
    /// The connection failed while sending the request or streaming a body.
    Transport,
    /// Builder, redirect, decode, upgrade, or a kind reqwest adds later.
    Other,
}

impl ReqwestFailure {
    fn of(err: &reqwest::Error) -> Self {
        // The status comes first: an error built by `error_for_status` carries the server's
        // verdict, which is more precise than any transport symptom.
        if let Some(status) = err.status() {
            Self::Status(status.as_u16())
        } else if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect
        } else if err.is_request() || err.is_body() {
            Self::Transport
        } else {
            Self::Other
        }
    }

    fn retryability(self) -> Retryability {
        match self {
            Self::Status(status) => http_status(status),
            Self::Timeout | Self::Connect => Retryability::Transient,
            // The network failing, not the request being wrong.
            Self::Transport => Retryability::Transient,
            // Builder, redirect, decode and upgrade errors repeat identically, and an unknown
            // failure is not retried by default.
            Self::Other => Retryability::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn http_status_table() {
        let table: &[(u16, Retryability)] = &[
            (200, Retryability::Permanent),
            (204, Retryability::Permanent),
            (301, Retryability::Permanent),
            (304, Retryability::Permanent),
            (400, Retryability::Permanent),
            (401, Retryability::Permanent),
            (403, Retryability::Permanent),
            (404, Retryability::Permanent),
            (408, Retryability::Transient),
            (409, Retryability::Permanent),
            (410, Retryability::Permanent),
            (422, Retryability::Permanent),
            (425, Retryability::Transient),
            (429, Retryability::Transient),
            (451, Retryability::Permanent),
            (499, Retryability::Permanent),
            (500, Retryability::Transient),
            (501, Retryability::Permanent),
            (502, Retryability::Transient),
            (503, Retryability::Transient),
            (504, Retryability::Transient),
            (505, Retryability::Permanent),
            (507, Retryability::Transient),
            (511, Retryability::Transient),
            (599, Retryability::Transient),
            (100, Retryability::Permanent),
            (600, Retryability::Permanent),
            (0, Retryability::Permanent),
        ];
        for &(status, expected) in table {
            assert_eq!(http_status(status), expected, "HTTP {status}");
        }
    }

    #[test]
    fn every_other_4xx_is_permanent() {
        for status in 400..=499 {
            let expected = match status {
                408 | 425 | 429 => Retryability::Transient,
                _ => Retryability::Permanent,
            };
            assert_eq!(http_status(status), expected, "HTTP {status}");
        }
    }

    #[test]
    fn grpc_code_table() {
        let table = [
            (Code::Ok, Retryability::Permanent),
            (Code::Cancelled, Retryability::Permanent),
            (Code::Unknown, Retryability::Permanent),
            (Code::InvalidArgument, Retryability::Permanent),
            (Code::DeadlineExceeded, Retryability::Transient),
            (Code::NotFound, Retryability::Permanent),
            (Code::AlreadyExists, Retryability::Permanent),
            (Code::PermissionDenied, Retryability::Permanent),
            (Code::ResourceExhausted, Retryability::Transient),
            (Code::FailedPrecondition, Retryability::Permanent),
            (Code::Aborted, Retryability::Permanent),
            (Code::OutOfRange, Retryability::Permanent),
            (Code::Unimplemented, Retryability::Permanent),
            (Code::Internal, Retryability::Permanent),
            (Code::Unavailable, Retryability::Transient),
            (Code::DataLoss, Retryability::Permanent),
            (Code::Unauthenticated, Retryability::Permanent),
        ];
        // Every code from 0 to 16 appears exactly once, so the table cannot silently skip one.
        let mut numbers: Vec<i32> = table.iter().map(|(code, _)| *code as i32).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..=16).collect::<Vec<_>>());

        for (code, expected) in table {
            assert_eq!(grpc_code(code), expected, "{code:?}");
        }
    }

    #[test]
    fn reqwest_failure_table() {
        let table = [
            (ReqwestFailure::Status(503), Retryability::Transient),
            (ReqwestFailure::Status(429), Retryability::Transient),
            (ReqwestFailure::Status(400), Retryability::Permanent),
            (ReqwestFailure::Status(501), Retryability::Permanent),
            (ReqwestFailure::Timeout, Retryability::Transient),
            (ReqwestFailure::Connect, Retryability::Transient),
            (ReqwestFailure::Transport, Retryability::Transient),
            (ReqwestFailure::Other, Retryability::Permanent),
        ];
        for (failure, expected) in table {
            assert_eq!(failure.retryability(), expected, "{failure:?}");
        }
    }

    #[test]
    fn tonic_status_uses_its_code() {
        assert_eq!(tonic::Status::unavailable("connection refused").retryability(), Retryability::Transient);
        assert_eq!(tonic::Status::aborted("version conflict").retryability(), Retryability::Permanent);
        assert_eq!(tonic::Status::invalid_argument("bad sku").retryability(), Retryability::Permanent);
    }
}
