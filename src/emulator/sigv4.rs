//! SigV4 checking as AWS does it: parse the `Authorization` header, rebuild the canonical
//! request and string to sign, and compare HMAC-SHA256 signatures in constant time.

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

use super::errors::ApiError;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
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
        return Err(AuthFailure::Unsigned(ApiError::missing_authentication()));
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let auth = parse_authorization(&value)
        .map_err(|m| AuthFailure::Unsigned(ApiError::incomplete_signature(m)))?;
    let amz_date = headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(amz_date) = amz_date else {
        return Err(AuthFailure::Unsigned(ApiError::incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=".to_owned() + &value,
        )));
    };
    let rejected = |m: String| Err(AuthFailure::Rejected(ApiError::invalid_signature(m)));
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
    // MTurk refuses temporary credentials (mturk-api.md): the session token is "invalid".
    if headers.contains_key("x-amz-security-token") {
        return Err(AuthFailure::Rejected(ApiError::unrecognized_client()));
    }
    let Some((akid, secret)) = credentials else {
        return Ok(());
    };
    if auth.access_key_id != akid {
        return Err(AuthFailure::Rejected(ApiError::unrecognized_client()));
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
