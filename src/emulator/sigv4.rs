//! SigV4 checking as AWS does it: parse the `Authorization` header, rebuild the canonical
//! request and string to sign, and compare HMAC-SHA256 signatures in constant time; and, when
//! asked, compare `X-Amz-Date` with the server's clock.
//!
//! The refusal texts here are those of AWS's SigV4 front end, the same for every AWS JSON
//! service; their status and the few answers that differ between services are in `guesses.rs`.

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::guesses;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

fn incomplete_signature(message: impl Into<String>) -> ApiError {
    ApiError::front(
        guesses::AUTH_ERROR_STATUS,
        "IncompleteSignatureException",
        message,
    )
}

fn invalid_signature(message: impl Into<String>) -> ApiError {
    ApiError::front(
        guesses::AUTH_ERROR_STATUS,
        "InvalidSignatureException",
        message,
    )
}

/// An access key ID the service does not know.
fn unrecognized_client() -> ApiError {
    ApiError::front(
        guesses::AUTH_ERROR_STATUS,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
}
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const SERVICE: &str = "mturk-requester";

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AuthHeader<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// Why a request's authentication was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No usable signature at all (counted as unsigned).
    Unsigned(ApiError),
    /// Signed, but wrongly or with an unknown key.
    Rejected(ApiError),
}

pub(crate) fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, String> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            format!(
                "Authorization header requires the '{ALGORITHM}' algorithm. Authorization={value}"
            )
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    // AWS lists every missing parameter in one message.
    let mut missing = String::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed),
    ] {
        if v.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(format!("{missing}Authorization={value}"));
    };
    if !missing.is_empty() {
        return Err(format!("{missing}Authorization={value}"));
    }
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(format!(
            "Credential should be scoped to a valid region, service and terminator. Authorization={value}"
        ));
    };
    Ok(AuthHeader {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// AWS's URI encoding: unreserved characters stay, everything else becomes `%XX`.
fn uri_encode(text: &str, encode_slash: bool, out: &mut String) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut ek = String::new();
            let mut ev = String::new();
            uri_encode(&percent_decode(k), true, &mut ek);
            uri_encode(&percent_decode(v), true, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces collapsed.
fn canonical_value(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request. `path` is the raw (already percent-encoded) path: like the SDKs for
/// every service but S3, it is encoded once more.
pub(crate) fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed_headers: &[&str],
    payload: &[u8],
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    if path.is_empty() {
        out.push('/');
    } else {
        uri_encode(path, false, &mut out);
    }
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| canonical_value(v.as_bytes()))
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&hex::encode(Sha256::digest(payload)));
    out
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac
}

pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes()).finalize();
    let k_region = hmac(&k_date.into_bytes(), region.as_bytes()).finalize();
    let k_service = hmac(&k_region.into_bytes(), service.as_bytes()).finalize();
    hmac(&k_service.into_bytes(), b"aws4_request")
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Checks a request's authentication. Structure (algorithm, scope, signed `host`, date) is
/// always checked; the signature itself only when `credentials` are configured.
pub(crate) fn check(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    payload: &[u8],
    credentials: Option<&(String, String)>,
) -> Result<(), AuthFailure> {
    let Some(value) = headers.get("authorization") else {
        return Err(AuthFailure::Unsigned(guesses::missing_authentication()));
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let auth =
        parse_authorization(&value).map_err(|m| AuthFailure::Unsigned(incomplete_signature(m)))?;
    let amz_date = headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(amz_date) = amz_date else {
        return Err(AuthFailure::Unsigned(incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=".to_owned() + &value,
        )));
    };
    let rejected = |m: String| Err(AuthFailure::Rejected(invalid_signature(m)));
    if !auth.signed_headers.contains(&"host") {
        return rejected(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        );
    }
    if auth.region != REGION {
        return rejected(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        ));
    }
    if auth.service != SERVICE {
        return rejected(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        ));
    }
    if auth.terminator != "aws4_request" {
        return rejected(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
            auth.terminator
        ));
    }
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return rejected(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            amz_date.get(..8).unwrap_or(&amz_date)
        ));
    }
    // MTurk refuses temporary credentials (mturk-api.md); how it says so is a guess.
    if headers.contains_key("x-amz-security-token") {
        return Err(AuthFailure::Rejected(guesses::session_token_refused()));
    }
    let Some((akid, secret)) = credentials else {
        return Ok(());
    };
    if auth.access_key_id != akid {
        return Err(AuthFailure::Rejected(unrecognized_client()));
    }
    let canonical = canonical_request(method, path, query, headers, &auth.signed_headers, payload);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(secret, auth.date, auth.region, auth.service);
    let given = hex::decode(auth.signature).unwrap_or_default();
    if hmac(&key, to_sign.as_bytes()).verify_slice(&given).is_err() {
        return rejected(format!(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        ));
    }
    Ok(())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds since the Unix epoch of an `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
pub(crate) fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYYMMDDTHHMMSSZ`, as `X-Amz-Date` and AWS's messages write a time.
pub(crate) fn format_amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// An HTTP `Date` value (IMF-fixdate, `Mon, 01 Jan 2024 00:00:00 GMT`).
pub(crate) fn format_http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let t = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Refuses a request whose `X-Amz-Date` lies more than the signature window away from
/// `server_now` (seconds since the epoch), with AWS's texts.
pub(crate) fn check_request_time(amz_date: &str, server_now: i64) -> Result<(), ApiError> {
    let Some(request) = parse_amz_date(amz_date) else {
        return Err(guesses::bad_amz_date(amz_date));
    };
    let window = guesses::SIGNATURE_WINDOW_MINUTES * 60;
    if request < server_now - window {
        return Err(guesses::signature_expired(
            amz_date,
            &format_amz_date(server_now - window),
            &format_amz_date(server_now),
        ));
    }
    if request > server_now + window {
        return Err(guesses::signature_not_yet_current(
            amz_date,
            &format_amz_date(server_now + window),
            &format_amz_date(server_now),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn vanilla_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        h
    }

    /// AWS's published SigV4 test suite, case `get-vanilla`.
    #[test]
    fn get_vanilla_matches_the_aws_test_suite() {
        let h = vanilla_headers();
        let canonical = canonical_request("GET", "/", "", &h, &["host", "x-amz-date"], b"");
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        let sig = hex::encode(hmac(&key, sts.as_bytes()).finalize().into_bytes());
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query("a=b%20c&a=a&z"), "a=a&a=b%20c&z=");
        assert_eq!(canonical_query("k=%2F%7e"), "k=%2F~");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        assert_eq!(canonical_value(b"  a   b  c "), "a b c");
    }

    #[test]
    fn authorization_header_parts() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/mturk-requester/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AKID");
        assert_eq!(a.date, "20240101");
        assert_eq!(a.service, "mturk-requester");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(a.signature, "abcd");
        let e = parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/x").unwrap_err();
        assert!(e.contains("requires 'Signature' parameter"), "{e}");
        assert!(parse_authorization("Basic dXNlcjpwYXNz").is_err());
    }

    #[test]
    fn amz_dates_round_trip_and_http_dates_match_known_days() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        // A leap day and the turn of a century.
        for t in [951_782_400, 4_107_542_399, 1_709_164_800] {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t));
        }
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(1_440_938_160),
            "Sun, 30 Aug 2015 12:36:00 GMT"
        );
        for bad in [
            "",
            "20150830T123600",
            "20151330T123600Z",
            "2015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_times_outside_the_window_get_awss_texts() {
        let now = 1_440_938_160; // 20150830T123600Z
        assert_eq!(check_request_time("20150830T123600Z", now), Ok(()));
        assert_eq!(check_request_time("20150830T122100Z", now), Ok(()));
        let e = check_request_time("20150830T122059Z", now).unwrap_err();
        assert_eq!(e.kind, "InvalidSignatureException");
        assert_eq!(
            e.message,
            "Signature expired: 20150830T122059Z is now earlier than 20150830T122100Z (20150830T123600Z - 15 min.)"
        );
        let e = check_request_time("20150830T125101Z", now).unwrap_err();
        assert_eq!(
            e.message,
            "Signature not yet current: 20150830T125101Z is still later than 20150830T125100Z (20150830T123600Z + 15 min.)"
        );
        let e = check_request_time("yesterday", now).unwrap_err();
        assert_eq!(e.kind, "IncompleteSignatureException");
    }

    #[test]
    fn unsigned_and_unknown_keys_are_refused() {
        let h = HeaderMap::new();
        assert!(matches!(
            check("POST", "/", "", &h, b"{}", None),
            Err(AuthFailure::Unsigned(e)) if e.kind == "MissingAuthenticationTokenException"
        ));
        let mut h = vanilla_headers();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=OTHER/20150830/us-east-1/mturk-requester/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            ),
        );
        assert_eq!(check("POST", "/", "", &h, b"{}", None), Ok(()));
        let creds = ("AKID".to_owned(), SECRET.to_owned());
        assert!(matches!(
            check("POST", "/", "", &h, b"{}", Some(&creds)),
            Err(AuthFailure::Rejected(e)) if e.kind == "UnrecognizedClientException"
        ));
    }
}
