//! Reading an HTTP request body within Stitch's limits, shared by every HTTP receiver.
//!
//! [`read_body`] applies, in order: the `Content-Encoding` check (gzip or none), the declared
//! `Content-Length` against the size limit, a reservation of in-flight memory, the size limit
//! while reading, bounded gzip decompression (the decompressed size is capped too) and, for
//! compressed or unsized bodies, a reservation for what was really read. Each failure is
//! counted in [`IngestStats`](crate::IngestStats) and returned as a [`BodyError`] that each
//! receiver renders in its own protocol.

use std::io::Read;
use std::sync::atomic::Ordering;

use axum::body::{Body, to_bytes};
use http::{HeaderMap, StatusCode, header};
use tokio::sync::OwnedSemaphorePermit;

use crate::{Ingest, IngestError};

/// A body that was read and decompressed, with the memory reserved for it.
pub struct ReadBody {
    /// The uncompressed bytes.
    pub bytes: Vec<u8>,
    /// Held until the request is answered.
    pub permit: OwnedSemaphorePermit,
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The `Content-Encoding` is neither gzip nor identity (415).
    UnsupportedEncoding(String),
    /// The body, compressed or decompressed, is over the size limit (413).
    TooLarge(String),
    /// The body could not be read or decompressed (400).
    Malformed(String),
    /// Not enough in-flight memory is left (503, retry later).
    Overloaded(IngestError),
    /// The body did not arrive within the body timeout (408).
    TimedOut(String),
}

impl BodyError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
            BodyError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The message for the sender.
    pub fn message(&self) -> String {
        match self {
            BodyError::UnsupportedEncoding(m)
            | BodyError::TooLarge(m)
            | BodyError::Malformed(m)
            | BodyError::TimedOut(m) => m.clone(),
            BodyError::Overloaded(e) => e.to_string(),
        }
    }
}

/// The media type of a `Content-Type` value, lower-case, without parameters
/// (`Application/JSON; charset=utf-8` is `application/json`).
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the body is gzip-compressed, from `Content-Encoding`. Counts an unsupported
/// encoding as a malformed request.
pub fn gzip_encoded(ingest: &Ingest, headers: &HeaderMap) -> Result<bool, BodyError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(other) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            Err(BodyError::UnsupportedEncoding(format!(
                "unsupported content encoding {other:?}: send gzip or no encoding"
            )))
        }
    }
}

/// Reads `body` within the limits of `ingest`; see the module docs.
pub async fn read_body(
    ingest: &Ingest,
    headers: &HeaderMap,
    body: Body,
) -> Result<ReadBody, BodyError> {
    let gzip = gzip_encoded(ingest, headers)?;
    let limit = ingest.config().max_request_bytes;
    let too_large = |what: &str| {
        ingest
            .stats
            .oversized_requests
            .fetch_add(1, Ordering::Relaxed);
        BodyError::TooLarge(format!("{what} exceeds the limit of {limit} bytes"))
    };
    let malformed = |message: String| {
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        BodyError::Malformed(message)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large("request body"));
    }
    // Reserve memory before reading when the size is known, so a flood of large requests is
    // refused instead of buffered.
    let permit = match declared {
        Some(n) => Some(ingest.reserve(n).map_err(BodyError::Overloaded)?),
        None => None,
    };
    let timeout = ingest.config().body_timeout;
    let Ok(read) = tokio::time::timeout(timeout, to_bytes(body, limit)).await else {
        ingest
            .stats
            .timed_out_requests
            .fetch_add(1, Ordering::Relaxed);
        return Err(BodyError::TimedOut(format!(
            "the request body did not arrive whole within {} s; send it at once, or retry",
            timeout.as_secs_f64()
        )));
    };
    let bytes = match read {
        Ok(b) => b,
        Err(e) => {
            // The only errors are the limit and a broken connection; report both precisely.
            let msg = e.to_string();
            if msg.contains("length limit") {
                return Err(too_large("request body"));
            }
            return Err(malformed(format!("failed to read request body: {msg}")));
        }
    };
    let bytes: Vec<u8> = if gzip {
        let mut out = Vec::with_capacity((bytes.len() * 4).min(limit));
        let decoder = flate2::read::GzDecoder::new(&bytes[..]);
        match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
            Ok(_) if out.len() > limit => return Err(too_large("decompressed request body")),
            Ok(_) => out,
            Err(e) => {
                return Err(malformed(format!(
                    "failed to decompress gzip request body: {e}"
                )));
            }
        }
    } else {
        bytes.to_vec()
    };
    let permit = match permit {
        Some(p) if !gzip => p,
        _ => ingest.reserve(bytes.len()).map_err(BodyError::Overloaded)?,
    };
    Ok(ReadBody { bytes, permit })
}
