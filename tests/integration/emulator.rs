//! The MTurk emulator driven by the real `aws-sdk-mturk` client (and by raw HTTP where the SDK
//! cannot misbehave on purpose): every operation, every error shape payout classifies.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_mturk::Client;
use aws_sdk_mturk::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_mturk::operation::get_qualification_score::GetQualificationScoreError;
use aws_sdk_mturk::operation::send_bonus::SendBonusError;
use aws_sdk_mturk::types::{QualificationStatus, QualificationTypeStatus};
use clap::Parser;
use payout::emulator::{
    AccountMode, AfterApplyStatus, BackgroundEmulator, EmulatorArgs, EmulatorConfig, FaultScope,
    KnownAssignment, RunningEmulator, load_known_csv, serve_until,
};
use payout::money::Cents;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const W1: &str = "A143XRCI1YXAFE";
const W2: &str = "A2B3C4D5E6F7G8";
const A1: &str = "3AMW0RGHOD1P7H6ZJ6QR5GLF7TIPN8";
const A2: &str = "3BQU611VFPJEKYIKKY5HGR4J4D299B";
const H1: &str = "3HYA4D452RICLOOY2BTUK0F7HZ3F2X";

/// Every test is bounded: a hung server or client fails the test instead of the CI job.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took longer than 60 s")
}

fn client_with(url: &str, akid: &str, secret: &str) -> Client {
    client_with_session(url, akid, secret, None)
}

/// A client whose credentials may carry a session token (temporary credentials).
fn client_with_session(url: &str, akid: &str, secret: &str, token: Option<&str>) -> Client {
    let conf = aws_sdk_mturk::Config::builder()
        .behavior_version(aws_sdk_mturk::config::BehaviorVersion::latest())
        .region(aws_sdk_mturk::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_mturk::config::Credentials::new(
            akid,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        ))
        .retry_config(aws_sdk_mturk::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn client(url: &str) -> Client {
    client_with(url, "AKIDTEST", "secret")
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    RunningEmulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator starts")
}

fn known() -> Vec<KnownAssignment> {
    vec![
        KnownAssignment {
            worker_id: W1.into(),
            assignment_id: A1.into(),
            hit_id: H1.into(),
        },
        KnownAssignment {
            worker_id: W2.into(),
            assignment_id: A2.into(),
            hit_id: H1.into(),
        },
    ]
}

async fn bonus(
    c: &Client,
    worker: &str,
    assignment: &str,
    amount: &str,
    token: Option<&str>,
) -> Result<(), SdkError<SendBonusError, aws_sdk_mturk::config::http::HttpResponse>> {
    c.send_bonus()
        .worker_id(worker)
        .assignment_id(assignment)
        .bonus_amount(amount)
        .reason("Thanks for the careful work")
        .set_unique_request_token(token.map(str::to_owned))
        .send()
        .await
        .map(|_| ())
}

/// The RequestError message of a SendBonus failure (panics on any other outcome).
fn request_error(
    r: Result<(), SdkError<SendBonusError, aws_sdk_mturk::config::http::HttpResponse>>,
) -> String {
    match r.expect_err("expected an error").into_service_error() {
        SendBonusError::RequestError(e) => e.message().unwrap_or_default().to_owned(),
        other => panic!("expected RequestError, got {other:?}"),
    }
}

/// MTurk-layer messages end in " (<ms timestamp>)" (" (<ms timestamp> s)" on
/// ParameterValidationError, as seen live); returns the text before it.
fn strip_timestamp(message: &str) -> &str {
    let (text, ts) = message.rsplit_once(" (").expect("message has a timestamp");
    let digits = ts
        .strip_suffix(" s)")
        .or_else(|| ts.strip_suffix(')'))
        .expect("timestamp in parentheses");
    assert!(
        digits.len() >= 13 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{message}"
    );
    text
}

#[tokio::test]
async fn send_bonus_pays_and_debits_amount_plus_fee() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        bonus(&c, W1, A1, "1.00", Some("tok-1")).await.unwrap();
        bonus(&c, W1, A2, "12.34", None).await.unwrap();
        let balance = c.get_account_balance().send().await.unwrap();
        // 10000.00 - (1.00 + 0.20) - (12.34 + 2.47)
        assert_eq!(balance.available_balance(), Some("9983.99"));
        let h = emu.handle();
        assert_eq!(h.balance(), Cents(998_399));
        let ledger = h.ledger();
        assert_eq!(ledger.len(), 2);
        assert_eq!(ledger[0].worker_id, W1);
        assert_eq!(ledger[0].amount, Cents(100));
        assert_eq!(ledger[0].fee, Cents(20));
        assert_eq!(ledger[0].token.as_deref(), Some("tok-1"));
        assert_eq!(ledger[1].fee, Cents(247));
        assert!(h.double_payments().is_empty());
        let stats = h.stats();
        assert_eq!(stats.payments, 2);
        assert_eq!(stats.calls["SendBonus"], 2);
        assert_eq!(stats.calls["GetAccountBalance"], 1);
        assert_eq!(stats.total_requests, 3);
        assert!(stats.max_requests_in_1s >= 1);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn duplicate_token_is_refused_for_24_hours_then_pays_again() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let h = emu.handle();
        bonus(&c, W1, A1, "0.50", Some("row-7")).await.unwrap();
        let msg = request_error(bonus(&c, W1, A1, "0.50", Some("row-7")).await);
        assert_eq!(
            strip_timestamp(&msg),
            "The idempotency token \"row-7\" has already been processed."
        );
        assert_eq!(h.ledger().len(), 1);
        h.advance_clock(Duration::from_secs(24 * 3600 - 60));
        request_error(bonus(&c, W1, A1, "0.50", Some("row-7")).await);
        assert_eq!(h.ledger().len(), 1);
        h.advance_clock(Duration::from_secs(61));
        bonus(&c, W1, A1, "0.50", Some("row-7")).await.unwrap();
        assert_eq!(h.ledger().len(), 2);
        let doubles = h.double_payments();
        assert_eq!(doubles.len(), 1);
        assert_eq!(doubles[0].0.amount, Cents(50));
        assert!(doubles[0].1.time_ms >= doubles[0].0.time_ms + 24 * 3600 * 1000);
        emu.shutdown().await;
    })
    .await
}

/// The duplicate-token answer as the SDK sees it: a modeled `RequestError` (the code payout keys
/// on), with the known text and no invented TurkErrorCode.
#[tokio::test]
async fn the_sdk_reports_a_duplicate_token_as_request_error() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        bonus(&c, W1, A1, "0.50", Some("dup-1")).await.unwrap();
        let err = bonus(&c, W1, A1, "0.50", Some("dup-1")).await.unwrap_err();
        assert_eq!(err.code(), Some("RequestError"));
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        match err.into_service_error() {
            SendBonusError::RequestError(e) => {
                assert_eq!(
                    strip_timestamp(e.message().unwrap_or_default()),
                    "The idempotency token \"dup-1\" has already been processed."
                );
                assert_eq!(e.turk_error_code(), None, "the live code is unknown");
            }
            other => panic!("expected RequestError, got {other:?}"),
        }
        emu.shutdown().await;
    })
    .await
}

/// Every kind of error answer carries the headers every AWS JSON service sends and nothing the
/// emulator would have to invent: no `x-amzn-query-error` (botocore would report its code
/// instead of `RequestError`), no `x-amzn-errortype`.
#[tokio::test]
async fn error_answers_carry_only_aws_headers() {
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let url = emu.url();
        let h = emu.handle();
        let pay = |token: &str, worker: &str| {
            format!(
                r#"{{"WorkerId":"{worker}","AssignmentId":"{A1}","BonusAmount":"1","Reason":"r","UniqueRequestToken":"{token}"}}"#
            )
        };
        let signed = |target: &str, body: &str| api_request(Some(target), Some(FAKE_AUTH), body);
        let (status, _, _) = raw_http(&url, signed("SendBonus", &pay("hdr-1", W1))).await;
        assert_eq!(status, 200);
        let mut cases = vec![
            ("duplicate token", signed("SendBonus", &pay("hdr-1", W1)), 400, "RequestError"),
            ("unknown worker", signed("SendBonus", &pay("hdr-2", "A9NOSUCH")), 400, "ParameterValidationError"),
            ("validation", signed("SendBonus", "{}"), 400, "ValidationException"),
            ("serialization", signed("SendBonus", "{oops"), 400, "SerializationException"),
            ("unknown operation", signed("PayEveryone", "{}"), 400, "UnknownOperationException"),
            ("unsigned", api_request(Some("SendBonus"), None, "{}"), 400, "MissingAuthenticationTokenException"),
        ];
        for (what, request, want_status, want_type) in cases.drain(..) {
            let (status, head, body) = raw_http(&url, request).await;
            assert_eq!(status, want_status, "{what}: {head}{body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
            assert_eq!(v["__type"], want_type, "{what}");
            assert!(!head.contains("x-amzn-query-error"), "{what}: {head}");
            assert!(!head.contains("x-amzn-errortype"), "{what}: {head}");
            for expected in ["x-amzn-requestid: ", "content-type: application/x-amz-json-1.1", "content-length: ", "date: "] {
                assert!(head.contains(expected), "{what}: no {expected} in {head}");
            }
        }
        // Throttling and a ServiceFault too.
        h.update_faults(|c| c.fault_rate = 1.0);
        let (status, head, body) = raw_http(&url, signed("GetAccountBalance", "{}")).await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("ServiceFault"));
        assert!(!head.contains("x-amzn-query-error"), "{head}");
        h.update_faults(|c| {
            c.fault_rate = 0.0;
            c.throttle_rps = Some(0);
        });
        let (status, head, body) = raw_http(&url, signed("GetAccountBalance", "{}")).await;
        assert_eq!(status, 400);
        assert!(body.contains("ThrottlingException"));
        assert!(!head.contains("x-amzn-query-error"), "{head}");
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn malformed_values_get_awss_validation_exception() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let err = bonus(&c, W1, A1, "1.234", None).await.unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"));
        assert_eq!(
            err.message(),
            Some(
                r"1 validation error detected: Value '1.234' at 'bonusAmount' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+(\.)?[0-9]{0,2}$"
            )
        );
        // Unmodeled for the SDK: neither RequestError nor ServiceFault.
        let service = err.into_service_error();
        assert!(!service.is_request_error() && !service.is_service_fault());
        let err = bonus(&c, "B143", "3a-b", "$1", None).await.unwrap_err();
        let msg = err.message().unwrap_or_default().to_owned();
        assert!(msg.starts_with("3 validation errors detected: "), "{msg}");
        assert!(msg.contains("Value 'B143' at 'workerId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^A[A-Z0-9]+$"), "{msg}");
        assert!(msg.contains("at 'assignmentId'"), "{msg}");
        // A missing required member.
        let err = c
            .send_bonus()
            .worker_id(W1)
            .assignment_id(A1)
            .bonus_amount("1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"));
        assert!(
            err.message()
                .unwrap_or_default()
                .contains("Value null at 'reason' failed to satisfy constraint: Member must not be null")
        );
        assert!(emu.handle().ledger().is_empty());
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn known_mode_refuses_unknown_assignments_workers_and_mismatches() {
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let msg = request_error(bonus(&c, W1, "3NOSUCHASSIGNMENT", "1.00", None).await);
        assert_eq!(
            strip_timestamp(&msg),
            "Assignment 3NOSUCHASSIGNMENT does not exist."
        );

        let err = bonus(&c, "A9NOSUCHWORKER", A1, "1.00", None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ParameterValidationError"));
        let message = err.message().unwrap_or_default();
        assert!(message.ends_with(" s)"), "{message}");
        assert_eq!(
            strip_timestamp(message),
            "The value \"A9NOSUCHWORKER\" is not valid for the parameter WorkerId."
        );

        let msg = request_error(bonus(&c, W2, A1, "1.00", None).await);
        assert!(msg.contains(W2) && msg.contains(A1), "{msg}");

        bonus(&c, W1, A1, "1.00", None).await.unwrap();
        let ledger = emu.handle().ledger();
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0].hit_id, H1);

        let a = c.get_assignment().assignment_id(A2).send().await.unwrap();
        let a = a.assignment().unwrap();
        assert_eq!(a.worker_id(), Some(W2));
        assert_eq!(a.hit_id(), Some(H1));
        let err = c
            .get_assignment()
            .assignment_id("3NOSUCHASSIGNMENT")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("RequestError"));
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn default_mode_remembers_the_first_worker_of_an_assignment() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let err = c
            .get_assignment()
            .assignment_id(A1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            strip_timestamp(err.message().unwrap_or_default()),
            format!("Assignment {A1} does not exist.")
        );
        bonus(&c, W1, A1, "1.00", None).await.unwrap();
        let a = c.get_assignment().assignment_id(A1).send().await.unwrap();
        let a = a.assignment().unwrap();
        assert_eq!(a.worker_id(), Some(W1));
        assert_eq!(
            a.assignment_status(),
            Some(&aws_sdk_mturk::types::AssignmentStatus::Approved)
        );
        let hit = a.hit_id().unwrap().to_owned();
        assert_eq!(hit, emu.handle().ledger()[0].hit_id);
        request_error(bonus(&c, W2, A1, "1.00", None).await);
        assert_eq!(emu.handle().ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn insufficient_funds_from_balance_and_from_spend_limit() {
    bounded(async {
        let emu = start(EmulatorConfig {
            balance: Cents(250),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        const TEXT: &str = "This Requester has insufficient funds in their account to complete this transaction. Please visit https://requester.mturk.com/prepayments/new to purchase Prepaid HITs.";
        // 2.00 + 0.40 fee fits in 2.50; a second does not.
        bonus(&c, W1, A1, "2.00", Some("t1")).await.unwrap();
        let msg = request_error(bonus(&c, W1, A1, "0.09", Some("t2")).await);
        assert_eq!(strip_timestamp(&msg), TEXT);
        assert_eq!(h.balance(), Cents(10));
        // 0.08 + 0.02 fee = exactly the remaining 0.10.
        bonus(&c, W1, A1, "0.08", Some("t2")).await.unwrap();
        assert_eq!(h.balance(), Cents(0));

        h.set_balance(Cents(100_000));
        h.set_spend_limit(Some(Cents(400)));
        // Spent so far 2.50: 1.00 + 0.20 fits (3.70), then 0.30 + 0.06 crosses 4.00.
        bonus(&c, W1, A1, "1.00", None).await.unwrap();
        let msg = request_error(bonus(&c, W1, A1, "0.30", None).await);
        assert_eq!(strip_timestamp(&msg), TEXT);
        assert_eq!(h.spent(), Cents(370));
        h.set_spend_limit(None);
        bonus(&c, W1, A1, "0.30", None).await.unwrap();
        assert_eq!(h.ledger().len(), 4);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn throttling_answers_rate_exceeded_and_applies_nothing() {
    bounded(async {
        let emu = start(EmulatorConfig {
            throttle_rps: Some(1),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let mut throttled = None;
        let mut paid = 0;
        // With one request per second admitted, back-to-back calls are throttled; a handful
        // of attempts makes this independent of machine speed.
        for _ in 0..20 {
            match bonus(&c, W1, A1, "0.10", None).await {
                Ok(()) => paid += 1,
                Err(e) => {
                    throttled = Some(e);
                    break;
                }
            }
        }
        let err = throttled.expect("some call was throttled");
        assert_eq!(err.code(), Some("ThrottlingException"));
        assert_eq!(err.message(), Some("Rate exceeded"));
        let raw = err.raw_response().expect("an HTTP answer");
        assert_eq!(raw.status().as_u16(), 400);
        assert_eq!(h.ledger().len(), paid);
        assert_eq!(h.stats().throttled, 1);
        h.update_faults(|c| c.throttle_rps = None);
        bonus(&c, W1, A1, "0.10", None).await.unwrap();
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn service_fault_is_a_500_and_does_not_use_up_the_token() {
    bounded(async {
        let emu = start(EmulatorConfig {
            fault_rate: 1.0,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let err = bonus(&c, W1, A1, "1.00", Some("once")).await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
        match err.into_service_error() {
            SendBonusError::ServiceFault(f) => {
                strip_timestamp(f.message().unwrap_or_default());
            }
            other => panic!("expected ServiceFault, got {other:?}"),
        }
        assert!(h.ledger().is_empty());
        assert_eq!(h.stats().faulted, 1);
        h.update_faults(|c| c.fault_rate = 0.0);
        bonus(&c, W1, A1, "1.00", Some("once")).await.unwrap();
        assert_eq!(h.ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn lost_response_is_a_connection_error_but_the_bonus_was_paid() {
    bounded(async {
        let emu = start(EmulatorConfig {
            lost_rate: 1.0,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let err = bonus(&c, W1, A1, "1.00", Some("lost-1")).await.unwrap_err();
        assert!(
            matches!(err, SdkError::DispatchFailure(_)),
            "expected a dispatch failure, got {err:?}"
        );
        assert!(err.raw_response().is_none());
        assert_eq!(h.ledger().len(), 1);
        assert_eq!(h.stats().lost, 1);
        // The retry with the same token is recognised as already done.
        h.update_faults(|c| c.lost_rate = 0.0);
        let msg = request_error(bonus(&c, W1, A1, "1.00", Some("lost-1")).await);
        assert!(msg.contains("has already been processed"));
        assert_eq!(h.ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

/// The ambiguous 5xx: the bonus WAS paid, yet the client sees a server error. Each status, then
/// the seeded mix.
#[tokio::test]
async fn fault_after_apply_answers_5xx_but_the_ledger_holds_the_bonus() {
    bounded(async {
        let emu = start(EmulatorConfig {
            fault_after_rate: 1.0,
            fault_after_status: AfterApplyStatus::ServiceFault,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let err = bonus(&c, W1, A1, "1.00", Some("after-1"))
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
        assert!(
            matches!(err.into_service_error(), SendBonusError::ServiceFault(_)),
            "500 is MTurk's modeled fault"
        );
        assert_eq!(h.ledger().len(), 1, "applied before the fault");
        assert_eq!(h.stats().faulted_after_apply, 1);
        assert_eq!(h.stats().faulted, 0);

        h.update_faults(|c| c.fault_after_status = AfterApplyStatus::ServiceUnavailable);
        let err = bonus(&c, W1, A1, "1.00", Some("after-2"))
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert_eq!(h.ledger().len(), 2);

        h.update_faults(|c| c.fault_after_status = AfterApplyStatus::GatewayTimeout);
        let err = bonus(&c, W1, A1, "1.00", Some("after-3"))
            .await
            .unwrap_err();
        let raw = err.raw_response().expect("an HTTP answer");
        assert_eq!(raw.status().as_u16(), 504);
        assert_eq!(raw.headers().get("content-type"), Some("text/html"));
        assert_eq!(h.ledger().len(), 3);

        // The seeded mix gives every status, and every call is applied.
        h.update_faults(|c| c.fault_after_status = AfterApplyStatus::Mixed);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..30 {
            let err = bonus(&c, W1, A1, "0.01", Some(&format!("mix-{i}")))
                .await
                .unwrap_err();
            seen.insert(err.raw_response().map(|r| r.status().as_u16()));
        }
        assert_eq!(
            seen,
            [Some(500), Some(503), Some(504)].into_iter().collect()
        );
        assert_eq!(h.ledger().len(), 33);

        // The retry with the same token is recognised as already done.
        h.update_faults(|c| c.fault_after_rate = 0.0);
        let msg = request_error(bonus(&c, W1, A1, "1.00", Some("after-1")).await);
        assert!(msg.contains("has already been processed"), "{msg}");
        assert_eq!(h.ledger().len(), 33);
        assert_eq!(h.stats().faulted_after_apply, 33);
        emu.shutdown().await;
    })
    .await
}

/// What the client sees is the same as for a lost response (no answer at all), but nothing was
/// applied: the retry with the same token pays.
#[tokio::test]
async fn drop_before_apply_is_a_connection_error_and_pays_nothing() {
    bounded(async {
        let emu = start(EmulatorConfig {
            drop_before_rate: 1.0,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let err = bonus(&c, W1, A1, "1.00", Some("drop-1")).await.unwrap_err();
        assert!(
            matches!(err, SdkError::DispatchFailure(_)),
            "expected a dispatch failure, got {err:?}"
        );
        assert!(err.raw_response().is_none());
        assert!(h.ledger().is_empty());
        assert_eq!(h.stats().dropped_before_apply, 1);
        assert_eq!(h.stats().lost, 0);
        h.update_faults(|c| c.drop_before_rate = 0.0);
        bonus(&c, W1, A1, "1.00", Some("drop-1")).await.unwrap();
        assert_eq!(h.ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

/// With the Mutating scope, every fault hits SendBonus and none hits the lookups a verifier
/// uses; with All, the same rates hit lookups too.
#[tokio::test]
async fn fault_scope_mutating_keeps_lookups_clean() {
    bounded(async {
        let emu = start(EmulatorConfig {
            fault_rate: 1.0,
            fault_scope: FaultScope::Mutating,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let list = |c: &Client| {
            c.list_bonus_payments()
                .assignment_id(A1)
                .max_results(100)
                .send()
        };
        let err = bonus(&c, W1, A1, "1.00", Some("scope-1"))
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
        assert_eq!(list(&c).await.unwrap().num_results(), Some(0));
        c.get_account_balance().send().await.unwrap();

        h.update_faults(|c| {
            c.fault_rate = 0.0;
            c.fault_after_rate = 1.0;
            c.fault_after_status = AfterApplyStatus::GatewayTimeout;
        });
        bonus(&c, W1, A1, "1.00", Some("scope-2"))
            .await
            .unwrap_err();
        let page = list(&c).await.unwrap();
        assert_eq!(
            page.num_results(),
            Some(1),
            "the applied bonus is listed, cleanly"
        );
        assert_eq!(page.bonus_payments()[0].worker_id(), Some(W1));
        c.get_assignment().assignment_id(A1).send().await.unwrap();
        let stats = h.stats();
        assert_eq!((stats.faulted, stats.faulted_after_apply), (1, 1));

        h.update_faults(|c| c.fault_scope = FaultScope::All);
        let err = list(&c).await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(504));
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn latency_delays_every_answer() {
    bounded(async {
        let emu = start(EmulatorConfig {
            latency: Duration::from_millis(150),
            latency_jitter: Duration::from_millis(50),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let t = Instant::now();
        c.get_account_balance().send().await.unwrap();
        assert!(t.elapsed() >= Duration::from_millis(150));
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn list_bonus_payments_pages_including_the_empty_last_page() {
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        for i in 1..=4 {
            bonus(&c, W1, A1, &format!("0.0{i}"), None).await.unwrap();
        }
        bonus(&c, W2, A2, "0.05", None).await.unwrap();
        // By HIT: 5 payments, pages of 5 → a full page with a NextToken, then an empty page.
        let p1 = c
            .list_bonus_payments()
            .hit_id(H1)
            .max_results(5)
            .send()
            .await
            .unwrap();
        assert_eq!(p1.num_results(), Some(5));
        assert_eq!(p1.bonus_payments().len(), 5);
        let token = p1.next_token().expect("a token on an exactly full page");
        let p2 = c
            .list_bonus_payments()
            .hit_id(H1)
            .max_results(5)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(p2.num_results(), Some(0));
        assert!(p2.bonus_payments().is_empty());
        assert_eq!(p2.next_token(), None);

        // By assignment: 4 payments, pages of 3 → 3 + 1, no token on the short page.
        let p1 = c
            .list_bonus_payments()
            .assignment_id(A1)
            .max_results(3)
            .send()
            .await
            .unwrap();
        assert_eq!(p1.num_results(), Some(3));
        let first = &p1.bonus_payments()[0];
        assert_eq!(first.worker_id(), Some(W1));
        assert_eq!(first.bonus_amount(), Some("0.01"));
        assert!(first.grant_time().is_some());
        let p2 = c
            .list_bonus_payments()
            .assignment_id(A1)
            .max_results(3)
            .next_token(p1.next_token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(p2.num_results(), Some(1));
        assert_eq!(p2.bonus_payments()[0].bonus_amount(), Some("0.04"));
        assert_eq!(p2.next_token(), None);

        let err = c
            .list_bonus_payments()
            .assignment_id(A1)
            .max_results(101)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"));
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn qualifications_create_grant_score_revoke_and_list() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let h = emu.handle();
        let created = c
            .create_qualification_type()
            .name("Study 12 participant")
            .description("Took part in study 12")
            .qualification_type_status(QualificationTypeStatus::Active)
            .send()
            .await
            .unwrap();
        let qt = created.qualification_type().unwrap();
        let id = qt.qualification_type_id().unwrap().to_owned();
        assert_eq!(id.len(), 30);
        assert_eq!(qt.is_requestable(), Some(false));
        assert_eq!(h.qualification_type_id("Study 12 participant"), Some(id.clone()));

        let err = c
            .create_qualification_type()
            .name("Study 12 participant")
            .description("again")
            .qualification_type_status(QualificationTypeStatus::Active)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("RequestError"));
        match err.into_service_error() {
            aws_sdk_mturk::operation::create_qualification_type::CreateQualificationTypeError::RequestError(e) => {
                assert_eq!(e.turk_error_code(), Some("AWS.MechanicalTurk.QualificationTypeAlreadyExists"));
            }
            other => panic!("{other:?}"),
        }

        let got = c.get_qualification_type().qualification_type_id(&id).send().await.unwrap();
        assert_eq!(got.qualification_type().unwrap().name(), Some("Study 12 participant"));

        let listed = c
            .list_qualification_types()
            .query("study 12")
            .must_be_requestable(false)
            .must_be_owned_by_caller(true)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.num_results(), Some(1));
        assert_eq!(listed.qualification_types()[0].qualification_type_id(), Some(id.as_str()));
        // Types owned by others (MTurk's system types) appear only without MustBeOwnedByCaller.
        let all = c.list_qualification_types().must_be_requestable(false).send().await.unwrap();
        assert!(all.num_results().unwrap() > 1);
        let requestable = c.list_qualification_types().must_be_requestable(true).send().await.unwrap();
        assert_eq!(requestable.num_results(), Some(0));

        // Never granted.
        let err = c
            .get_qualification_score()
            .qualification_type_id(&id)
            .worker_id(W1)
            .send()
            .await
            .unwrap_err();
        match err.into_service_error() {
            GetQualificationScoreError::RequestError(e) => {
                assert_eq!(e.turk_error_code(), Some("AWS.MechanicalTurk.QualificationDoesNotExist"));
            }
            other => panic!("{other:?}"),
        }

        c.associate_qualification_with_worker()
            .qualification_type_id(&id)
            .worker_id(W1)
            .integer_value(87)
            .send()
            .await
            .unwrap();
        c.associate_qualification_with_worker()
            .qualification_type_id(&id)
            .worker_id(W2)
            .send_notification(false)
            .send()
            .await
            .unwrap();
        assert_eq!(h.qualification_score(&id, W1), Some(87));
        assert!(h.qualification(&id, W1).unwrap().send_notification, "SendNotification defaults to true");
        assert!(!h.qualification(&id, W2).unwrap().send_notification);
        assert_eq!(h.qualification_score(&id, W2), Some(1), "IntegerValue defaults to 1");

        let score = c
            .get_qualification_score()
            .qualification_type_id(&id)
            .worker_id(W1)
            .send()
            .await
            .unwrap();
        let q = score.qualification().unwrap();
        assert_eq!(q.integer_value(), Some(87));
        assert_eq!(q.status(), Some(&QualificationStatus::Granted));

        let workers = c
            .list_workers_with_qualification_type()
            .qualification_type_id(&id)
            .max_results(1)
            .send()
            .await
            .unwrap();
        assert_eq!(workers.num_results(), Some(1));
        let rest = c
            .list_workers_with_qualification_type()
            .qualification_type_id(&id)
            .max_results(1)
            .next_token(workers.next_token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(rest.num_results(), Some(1));
        assert_ne!(rest.qualifications()[0].worker_id(), workers.qualifications()[0].worker_id());

        c.disassociate_qualification_from_worker()
            .qualification_type_id(&id)
            .worker_id(W1)
            .reason("withdrew")
            .send()
            .await
            .unwrap();
        assert_eq!(h.qualification_score(&id, W1), None);
        let err = c
            .get_qualification_score()
            .qualification_type_id(&id)
            .worker_id(W1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("RequestError"));
        assert!(
            err.message()
                .unwrap_or_default()
                .contains("This operation can be called with a status of: Granted")
        );
        let revoked = c
            .list_workers_with_qualification_type()
            .qualification_type_id(&id)
            .status(QualificationStatus::Revoked)
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.num_results(), Some(1));
        assert_eq!(revoked.qualifications()[0].worker_id(), Some(W1));
        emu.shutdown().await;
    })
    .await
}

/// One notification e-mail per applied grant with SendNotification true (or omitted), per
/// (worker, type); none for SendNotification false or for a refused call.
#[tokio::test]
async fn notifications_are_counted_per_worker_and_type() {
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        let mut types = Vec::new();
        for name in ["Study A", "Study B"] {
            let t = c
                .create_qualification_type()
                .name(name)
                .description(name)
                .qualification_type_status(QualificationTypeStatus::Active)
                .send()
                .await
                .unwrap();
            types.push(
                t.qualification_type()
                    .unwrap()
                    .qualification_type_id()
                    .unwrap()
                    .to_owned(),
            );
        }
        let (ta, tb) = (&types[0], &types[1]);
        let grant = |t: &str, w: &str, notify: Option<bool>| {
            c.associate_qualification_with_worker()
                .qualification_type_id(t)
                .worker_id(w)
                .set_send_notification(notify)
                .send()
        };
        grant(ta, W1, None).await.unwrap();
        grant(ta, W1, Some(true)).await.unwrap();
        grant(tb, W1, Some(false)).await.unwrap();
        grant(tb, W2, None).await.unwrap();
        // Refused (unknown worker in known mode): nothing is sent.
        grant(ta, "A9NOSUCHWORKER", None).await.unwrap_err();
        assert_eq!(h.notifications(W1, ta), 2);
        assert_eq!(h.notifications(W1, tb), 0, "SendNotification false");
        assert_eq!(h.notifications(W2, tb), 1);
        assert_eq!(h.notifications(W2, ta), 0);
        assert_eq!(h.stats().notifications, 3);
        let all = h.notification_counts();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&(W1.to_owned(), ta.clone())], 2);

        let (status, _, body) = raw_http(
            &emu.url(),
            "GET /_emulator/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        )
        .await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let listed = v["notifications"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|n| n["worker_id"] == W2
            && n["qualification_type_id"] == tb.as_str()
            && n["count"] == 1));
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn worker_blocks() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let h = emu.handle();
        c.create_worker_block()
            .worker_id(W1)
            .reason("spam")
            .send()
            .await
            .unwrap();
        assert!(h.blocked(W1));
        assert_eq!(h.block_reason(W1).as_deref(), Some("spam"));
        let err = c
            .create_worker_block()
            .worker_id(W2)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"));
        assert!(!h.blocked(W2));
        c.delete_worker_block().worker_id(W1).send().await.unwrap();
        assert!(!h.blocked(W1));
        emu.shutdown().await;
    })
    .await
}

/// ListWorkerBlocks pages like the other lists: an exactly full page carries a NextToken, the
/// page after it is empty with NumResults 0 and no token.
#[tokio::test]
async fn list_worker_blocks_pages_including_the_empty_last_page() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let empty = c.list_worker_blocks().send().await.unwrap();
        assert_eq!(empty.num_results(), Some(0));
        assert_eq!(empty.next_token(), None);
        let workers: Vec<String> = (0..4).map(|i| format!("A1BLOCKED{i}")).collect();
        for (i, w) in workers.iter().enumerate() {
            c.create_worker_block()
                .worker_id(w)
                .reason(format!("reason {i}"))
                .send()
                .await
                .unwrap();
        }
        let mut listed = Vec::new();
        let mut token = None;
        let mut pages = Vec::new();
        loop {
            let page = c
                .list_worker_blocks()
                .max_results(2)
                .set_next_token(token.take())
                .send()
                .await
                .unwrap();
            pages.push(page.num_results().unwrap());
            for b in page.worker_blocks() {
                listed.push((
                    b.worker_id().unwrap().to_owned(),
                    b.reason().unwrap().to_owned(),
                ));
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, vec![2, 2, 0], "two full pages, then an empty one");
        let expected: Vec<(String, String)> = workers
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), format!("reason {i}")))
            .collect();
        assert_eq!(listed, expected);

        // A short page carries no token; an unblocked worker is no longer listed.
        c.delete_worker_block()
            .worker_id(&workers[0])
            .send()
            .await
            .unwrap();
        let page = c.list_worker_blocks().max_results(5).send().await.unwrap();
        assert_eq!(page.num_results(), Some(3));
        assert_eq!(page.next_token(), None);
        let err = c
            .list_worker_blocks()
            .max_results(0)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ValidationException"));
        let err = c
            .list_worker_blocks()
            .next_token("3-deadbeef")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ParameterValidationError"));
        assert_eq!(emu.handle().stats().calls["ListWorkerBlocks"], 7);
        emu.shutdown().await;
    })
    .await
}

/// One HTTP/1.1 exchange over a fresh connection: (status, headers, body).
async fn raw_http(url: &str, request: String) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full response");
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn api_request(target: Option<&str>, auth: Option<&str>, body: &str) -> String {
    let mut r = String::from("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    r.push_str("Content-Type: application/x-amz-json-1.1\r\n");
    if let Some(t) = target {
        r.push_str(&format!(
            "X-Amz-Target: MTurkRequesterServiceV20170117.{t}\r\n"
        ));
    }
    if let Some(a) = auth {
        r.push_str(&format!(
            "Authorization: {a}\r\nX-Amz-Date: 20240101T000000Z\r\n"
        ));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    r
}

const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/mturk-requester/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

#[tokio::test]
async fn unsigned_and_malformed_requests_get_awss_answers() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let url = emu.url();
        let body = format!(
            r#"{{"WorkerId":"{W1}","AssignmentId":"{A1}","BonusAmount":"1","Reason":"r"}}"#
        );
        let (status, head, body_out) =
            raw_http(&url, api_request(Some("SendBonus"), None, &body)).await;
        assert_eq!(status, 400);
        // The error type travels in the body only (see error_answers_carry_only_aws_headers).
        assert!(!head.contains("x-amzn-errortype"), "{head}");
        let v: serde_json::Value = serde_json::from_str(&body_out).unwrap();
        assert_eq!(v["__type"], "MissingAuthenticationTokenException");
        assert_eq!(emu.handle().stats().unsigned, 1);

        let (status, _, body_out) = raw_http(
            &url,
            api_request(Some("SendBonus"), Some("Basic abc"), &body),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            body_out.contains("IncompleteSignatureException"),
            "{body_out}"
        );
        assert_eq!(emu.handle().stats().unsigned, 2);
        assert!(emu.handle().ledger().is_empty());

        // Signed well enough (no credentials configured): the body is checked.
        for bad in ["{not json", "[1]", r#"{"WorkerId": 7}"#] {
            let (status, _, body_out) =
                raw_http(&url, api_request(Some("SendBonus"), Some(FAKE_AUTH), bad)).await;
            assert_eq!(status, 400);
            let v: serde_json::Value = serde_json::from_str(&body_out).unwrap();
            assert_eq!(v["__type"], "SerializationException", "{bad}");
        }
        let (status, _, body_out) = raw_http(
            &url,
            api_request(Some("PayEveryone"), Some(FAKE_AUTH), "{}"),
        )
        .await;
        assert_eq!(status, 400);
        assert!(body_out.contains("UnknownOperationException"));
        let (_, _, body_out) = raw_http(&url, api_request(None, Some(FAKE_AUTH), "{}")).await;
        assert!(body_out.contains("UnknownOperationException"));
        let stats = emu.handle().stats();
        assert_eq!(stats.calls["UnknownOperation"], 2);
        assert_eq!(stats.calls["SendBonus"], 5);

        // And a good raw one pays, with the MTurk error headers absent.
        let (status, head, body_out) =
            raw_http(&url, api_request(Some("SendBonus"), Some(FAKE_AUTH), &body)).await;
        assert_eq!((status, body_out.as_str()), (200, "{}"));
        assert!(head.contains("content-type: application/x-amz-json-1.1"));
        assert!(head.contains("x-amzn-requestid: "));
        assert_eq!(emu.handle().ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn signatures_are_verified_when_credentials_are_set() {
    bounded(async {
        let emu = start(EmulatorConfig {
            credentials: Some(("AKIDTEST".into(), "secret".into())),
            ..EmulatorConfig::default()
        })
        .await;
        let url = emu.url();
        // The real SDK's signature verifies.
        bonus(&client(&url), W1, A1, "1.00", None).await.unwrap();

        let err = bonus(
            &client_with(&url, "AKIDTEST", "wrong"),
            W1,
            A1,
            "1.00",
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("InvalidSignatureException"));
        assert!(err.message().unwrap_or_default().starts_with(
            "The request signature we calculated does not match the signature you provided."
        ));

        let err = bonus(
            &client_with(&url, "AKIDOTHER", "secret"),
            W1,
            A1,
            "1.00",
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("UnrecognizedClientException"));
        assert_eq!(
            err.message(),
            Some("The security token included in the request is invalid.")
        );

        let (status, _, body) =
            raw_http(&url, api_request(Some("SendBonus"), Some(FAKE_AUTH), "{}")).await;
        assert_eq!(status, 400);
        assert!(body.contains("InvalidSignatureException"), "{body}");

        let h = emu.handle();
        assert_eq!(h.ledger().len(), 1);
        assert_eq!(h.stats().bad_signatures, 3);
        assert_eq!(h.stats().unsigned, 0);
        emu.shutdown().await;
    })
    .await
}

/// Accounts that cannot use MTurk: not linked to a requester account (an MTurk-layer
/// RequestError, after the front end's validation) and an IAM user without an MTurk policy (the
/// front end's AccessDeniedException). Nothing is applied in either.
#[tokio::test]
async fn account_modes_answer_their_shapes() {
    bounded(async {
        let emu = start(EmulatorConfig {
            account: AccountMode::NotLinked,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        let h = emu.handle();
        for (mode, site) in [
            (AccountMode::NotLinked, "https://requester.mturk.com/developer"),
            (
                AccountMode::NotLinkedSandbox,
                "https://requestersandbox.mturk.com/developer",
            ),
        ] {
            h.update_faults(|c| c.account = mode);
            let err = c.get_account_balance().send().await.unwrap_err();
            assert_eq!(err.code(), Some("RequestError"), "{mode:?}");
            let message = strip_timestamp(err.message().unwrap_or_default()).to_owned();
            assert!(message.contains(site), "{mode:?}: {message}");
            assert!(message.contains("must be linked"), "{message}");
            match bonus(&c, W1, A1, "1.00", Some("t")).await.unwrap_err().into_service_error() {
                SendBonusError::RequestError(e) => {
                    assert_eq!(e.turk_error_code(), Some("AWS.AccountNotLinked"));
                }
                other => panic!("expected RequestError, got {other:?}"),
            }
            // The front end still checks the input first.
            let err = bonus(&c, W1, A1, "1.234", None).await.unwrap_err();
            assert_eq!(err.code(), Some("ValidationException"));
        }

        h.update_faults(|c| c.account = AccountMode::AccessDenied);
        let err = bonus(&c, W1, A1, "1.00", Some("t")).await.unwrap_err();
        assert_eq!(err.code(), Some("AccessDeniedException"));
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        assert_eq!(
            err.message(),
            Some(
                "User: arn:aws:iam::123456789012:user/payout-emulator is not authorized to perform: mechanicalturk:SendBonus because no identity-based policy allows the mechanicalturk:SendBonus action"
            )
        );
        let err = c.get_account_balance().send().await.unwrap_err();
        assert!(
            err.message()
                .unwrap_or_default()
                .contains("mechanicalturk:GetAccountBalance"),
            "{err:?}"
        );
        assert!(h.ledger().is_empty());

        h.update_faults(|c| c.account = AccountMode::Ready);
        bonus(&c, W1, A1, "1.00", Some("t")).await.unwrap();
        assert_eq!(h.ledger().len(), 1, "the refused calls did not use up the token");
        emu.shutdown().await;
    })
    .await
}

/// Temporary credentials (a session token) are refused whether or not signatures are checked;
/// an unknown access key is refused when they are.
#[tokio::test]
async fn temporary_credentials_and_unknown_keys_are_refused() {
    bounded(async {
        for credentials in [None, Some(("AKIDTEST".to_owned(), "secret".to_owned()))] {
            let checked = credentials.is_some();
            let emu = start(EmulatorConfig {
                credentials,
                ..EmulatorConfig::default()
            })
            .await;
            let url = emu.url();
            let temporary =
                client_with_session(&url, "AKIDTEST", "secret", Some("FwoGZXIvYXdzEXAMPLE"));
            let err = c_balance(&temporary).await;
            assert_eq!(
                err.0.as_deref(),
                Some("UnrecognizedClientException"),
                "checked: {checked}"
            );
            assert_eq!(err.1, 400);
            let err = c_balance(&client_with(&url, "AKIDUNKNOWN", "secret")).await;
            if checked {
                assert_eq!(err.0.as_deref(), Some("UnrecognizedClientException"));
            } else {
                assert_eq!(err.1, 200, "without credentials any key is accepted");
            }
            assert!(emu.handle().stats().bad_signatures >= 1);
            emu.shutdown().await;
        }
    })
    .await
}

/// (error code, HTTP status) of a GetAccountBalance; (None, 200) on success.
async fn c_balance(c: &Client) -> (Option<String>, u16) {
    match c.get_account_balance().send().await {
        Ok(_) => (None, 200),
        Err(e) => (
            e.code().map(str::to_owned),
            e.raw_response().map_or(0, |r| r.status().as_u16()),
        ),
    }
}

/// With a clock skew set the server compares X-Amz-Date with its own clock: 15 minutes either
/// way is accepted, more is refused with AWS's texts. The emulator clock that tests advance to
/// expire tokens is a different clock and never breaks signatures. The answer's `Date` is the
/// server's clock, from which the SDK corrects its own for the calls after a refusal.
#[tokio::test]
async fn clock_skew_refuses_stale_signatures_and_accepts_current_ones() {
    bounded(async {
        let emu = start(EmulatorConfig {
            clock_skew_secs: Some(0),
            credentials: Some(("AKIDTEST".into(), "secret".into())),
            ..EmulatorConfig::default()
        })
        .await;
        let url = emu.url();
        let h = emu.handle();
        let c = client(&url);
        bonus(&c, W1, A1, "1.00", Some("skew-1")).await.unwrap();
        h.advance_clock(Duration::from_secs(25 * 3600));
        bonus(&c, W1, A1, "1.00", Some("skew-1")).await.unwrap();
        assert_eq!(
            h.ledger().len(),
            2,
            "token expired, signature still current"
        );

        // The server runs an hour ahead of this client.
        h.update_faults(|c| c.clock_skew_secs = Some(3600));
        let behind = client(&url);
        let err = bonus(&behind, W1, A1, "1.00", Some("skew-2"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidSignatureException"));
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        let message = err.message().unwrap_or_default().to_owned();
        assert!(message.starts_with("Signature expired: "), "{message}");
        assert!(message.contains(" is now earlier than "), "{message}");
        assert!(message.ends_with(" - 15 min.)"), "{message}");
        assert_eq!(h.ledger().len(), 2);
        // The SDK read the server's clock from that answer's Date: its next call is accepted.
        bonus(&behind, W1, A1, "1.00", Some("skew-2"))
            .await
            .unwrap();
        assert_eq!(h.ledger().len(), 3);

        // An hour behind this client.
        h.update_faults(|c| c.clock_skew_secs = Some(-3600));
        let err = bonus(&client(&url), W1, A1, "1.00", Some("skew-3"))
            .await
            .unwrap_err();
        let message = err.message().unwrap_or_default();
        assert!(
            message.starts_with("Signature not yet current: "),
            "{message}"
        );
        assert!(message.contains(" is still later than "), "{message}");
        assert!(message.ends_with(" + 15 min.)"), "{message}");
        assert_eq!(h.stats().bad_signatures, 2);

        // Ten minutes off is inside the window.
        h.update_faults(|c| c.clock_skew_secs = Some(600));
        bonus(&client(&url), W1, A1, "1.00", Some("skew-3"))
            .await
            .unwrap();
        assert_eq!(h.ledger().len(), 4);
        emu.shutdown().await;

        // A request signed on a fixed date: refused while times are checked, accepted (as
        // hand-written requests are) when they are not.
        let emu = start(EmulatorConfig {
            clock_skew_secs: Some(0),
            ..EmulatorConfig::default()
        })
        .await;
        let balance = || api_request(Some("GetAccountBalance"), Some(FAKE_AUTH), "{}");
        let (status, _, body) = raw_http(&emu.url(), balance()).await;
        assert_eq!(status, 400);
        assert!(
            body.contains("Signature expired: 20240101T000000Z is now earlier than "),
            "{body}"
        );
        emu.handle().update_faults(|c| c.clock_skew_secs = None);
        let (status, _, _) = raw_http(&emu.url(), balance()).await;
        assert_eq!(status, 200);
        emu.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn inspection_endpoints() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let url = emu.url();
        let c = client(&url);
        bonus(&c, W1, A1, "1.00", None).await.unwrap();
        bonus(&c, W1, A1, "1.00", None).await.unwrap();
        let get =
            |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let post = |path: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
        };

        let (status, _, body) = raw_http(&url, get("/_emulator/ledger")).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["payments"].as_array().unwrap().len(), 2);
        assert_eq!(v["payments"][0]["amount"], 100);
        assert_eq!(v["payments"][0]["fee"], 20);
        assert_eq!(v["double_payments"].as_array().unwrap().len(), 1);

        let (_, _, body) = raw_http(&url, get("/_emulator/stats")).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["payments"], 2);
        assert_eq!(v["calls"]["SendBonus"], 2);

        let before = emu.handle().now_ms();
        let (status, _, _) = raw_http(&url, post("/_emulator/clock?advance_secs=86400")).await;
        assert_eq!(status, 200);
        assert!(emu.handle().now_ms() >= before + 86_400_000);

        let (status, _, body) = raw_http(&url, post("/_emulator/balance?amount=12.34")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(emu.handle().balance(), Cents(1234));
        let (status, _, _) = raw_http(&url, post("/_emulator/balance?amount=lots")).await;
        assert_eq!(status, 400);
        let (status, _, _) = raw_http(
            &url,
            post("/_emulator/clock?advance_secs=18446744073709551615"),
        )
        .await;
        assert_eq!(
            status, 200,
            "an absurd advance saturates instead of panicking"
        );
        let (status, _, body) = raw_http(&url, get("/_emulator/state")).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["balance"], 1234);
        let (status, _, _) = raw_http(&url, get("/_emulator/nothing")).await;
        assert_eq!(status, 404);

        // Inspection is not API traffic.
        assert_eq!(emu.handle().stats().total_requests, 2);
        emu.shutdown().await;
    })
    .await
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    emulator: EmulatorArgs,
}

#[tokio::test]
async fn cli_flags_configure_a_server_that_stops_on_signal() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("known.csv");
        std::fs::write(
            &csv,
            format!("WorkerId,AssignmentId,HITId\n{W1},{A1},{H1}\n"),
        )
        .unwrap();
        assert_eq!(load_known_csv(&csv).unwrap(), known()[..1].to_vec());

        let cli = Cli::try_parse_from([
            "emulator",
            "--balance",
            "5.00",
            "--spend-limit",
            "3",
            "--seed",
            "9",
            "--known",
            csv.to_str().unwrap(),
        ])
        .unwrap();
        assert!(Cli::try_parse_from(["emulator", "--fault-rate", "2"]).is_err());
        // Only loopback addresses unless --allow-remote.
        for host in ["0.0.0.0", "::", "192.0.2.7"] {
            let parsed = Cli::try_parse_from(["emulator", "--host", host]).unwrap();
            let err = parsed.emulator.config(|_| None).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("--allow-remote"), "{err}");
            let parsed =
                Cli::try_parse_from(["emulator", "--host", host, "--allow-remote"]).unwrap();
            let (_, addr) = parsed.emulator.config(|_| None).unwrap();
            assert_eq!(addr.ip().to_string(), host);
        }
        let parsed = Cli::try_parse_from(["emulator", "--host", "::1"]).unwrap();
        assert!(
            parsed.emulator.config(|_| None).is_ok(),
            "IPv6 loopback is local"
        );
        let faults = Cli::try_parse_from([
            "emulator",
            "--fault-after-rate",
            "0.25",
            "--fault-after-status",
            "gateway-timeout",
            "--drop-before-rate",
            "0.5",
            "--fault-scope",
            "mutating",
        ])
        .unwrap();
        let (fc, _) = faults.emulator.config(|_| None).unwrap();
        assert_eq!(fc.fault_after_rate, 0.25);
        assert_eq!(fc.fault_after_status, AfterApplyStatus::GatewayTimeout);
        assert_eq!(fc.drop_before_rate, 0.5);
        assert_eq!(fc.fault_scope, FaultScope::Mutating);
        let (dc, _) = Cli::try_parse_from(["emulator"])
            .unwrap()
            .emulator
            .config(|_| None)
            .unwrap();
        assert_eq!(
            (dc.fault_after_rate, dc.drop_before_rate, dc.fault_scope),
            (0.0, 0.0, FaultScope::All),
            "no new fault unless asked"
        );
        assert!(Cli::try_parse_from(["emulator", "--fault-scope", "lookups"]).is_err());
        let (ac, _) = Cli::try_parse_from([
            "emulator",
            "--account",
            "not-linked-sandbox",
            "--clock-skew-secs",
            "-3600",
        ])
        .unwrap()
        .emulator
        .config(|_| None)
        .unwrap();
        assert_eq!(ac.account, AccountMode::NotLinkedSandbox);
        assert_eq!(ac.clock_skew_secs, Some(-3600));
        assert_eq!((dc.account, dc.clock_skew_secs), (AccountMode::Ready, None));
        assert!(Cli::try_parse_from(["emulator", "--balance", "$5"]).is_err());

        let env = |name: &str| match name {
            "PAYOUT_EMULATOR_ACCESS_KEY_ID" => Some("AKIDTEST".to_owned()),
            "PAYOUT_EMULATOR_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        let (config, addr) = cli.emulator.config(env).unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:0");
        assert_eq!(config.balance, Cents(500));
        assert!(
            cli.emulator
                .config(|n| (n == "PAYOUT_EMULATOR_ACCESS_KEY_ID").then(String::new))
                .is_err()
        );

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
        let server = tokio::spawn(serve_until(
            config,
            addr,
            async {
                let _ = stop_rx.await;
            },
            move |url| {
                let _ = url_tx.send(url.to_owned());
            },
        ));
        let url = url_rx.await.unwrap();
        assert!(url.starts_with("http://127.0.0.1:"));
        let c = client(&url);
        bonus(&c, W1, A1, "2.00", None).await.unwrap();
        let msg = request_error(bonus(&c, W1, A1, "1.00", None).await);
        assert!(msg.contains("insufficient funds"), "{msg}");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        // After shutdown nothing listens any more.
        assert!(
            TcpStream::connect(url.trim_start_matches("http://"))
                .await
                .is_err()
        );
    })
    .await
}

/// Sync code (as payout's tests are) against a BackgroundEmulator, with `wait_for`.
#[test]
fn background_emulator_serves_sync_tests_and_stops_on_drop() {
    let emu = BackgroundEmulator::start(EmulatorConfig::default()).unwrap();
    let url = emu.url();
    let h = emu.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let waiter = {
        let h = h.clone();
        std::thread::spawn(move || h.wait_for(Duration::from_secs(30), |s| s.payments >= 3))
    };
    runtime.block_on(bounded(async {
        let c = client(&url);
        for a in ["3A1", "3A2", "3A3"] {
            bonus(&c, W1, a, "0.25", None).await.unwrap();
        }
    }));
    assert!(waiter.join().unwrap());
    assert!(!h.wait_for(Duration::from_millis(10), |s| s.payments >= 4));
    drop(emu);
    runtime.block_on(bounded(async {
        assert!(
            TcpStream::connect(url.trim_start_matches("http://"))
                .await
                .is_err()
        );
    }));
    // The handle outlives the server.
    assert_eq!(h.ledger().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_faults() {
    bounded(async {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let emu = start(EmulatorConfig {
                seed: 42,
                fault_rate: 0.5,
                ..EmulatorConfig::default()
            })
            .await;
            let c = client(&emu.url());
            let mut outcomes = Vec::new();
            for i in 0..20 {
                outcomes.push(bonus(&c, W1, &format!("3X{i}"), "0.01", None).await.is_ok());
            }
            assert!(outcomes.contains(&true) && outcomes.contains(&false));
            runs.push(outcomes);
            emu.shutdown().await;
        }
        assert_eq!(runs[0], runs[1]);
    })
    .await
}

/// The adapter, not the runner, decides that an unknown assignment simply has no bonuses.
#[tokio::test]
async fn the_adapter_lists_no_bonuses_for_an_unknown_assignment_and_pages_through_known_ones() {
    use payout::ids::AssignmentId;
    use payout::platform::{CredentialSource, MturkPlatform, Platform};
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        for i in 0..150 {
            bonus(&c, W1, A1, "0.01", Some(&format!("page-{i}")))
                .await
                .unwrap();
        }
        let platform = MturkPlatform::connect(
            &emu.url(),
            CredentialSource::Fixed {
                access_key_id: "AKIDTEST".into(),
                secret_access_key: "secret".into(),
            },
            payout::platform::Timeouts {
                connect: Duration::from_secs(5),
                call: Duration::from_secs(5),
            },
        )
        .await
        .unwrap();
        let unknown = AssignmentId::parse("3NOSUCHASSIGNMENT").unwrap();
        assert_eq!(
            platform.bonuses_for_assignment(&unknown).await,
            Ok(Vec::new())
        );
        let listed = platform
            .bonuses_for_assignment(&AssignmentId::parse(A1).unwrap())
            .await
            .unwrap();
        assert_eq!(listed.len(), 150, "all pages were read");
        assert!(
            listed
                .iter()
                .all(|b| b.worker == W1 && b.amount == Some(Cents(1)))
        );
        emu.shutdown().await;
    })
    .await
}

/// A clock `offset` seconds from real time (negative: behind), for an SDK client whose
/// computer's clock is off.
#[derive(Debug)]
struct OffClock(i64);

impl aws_smithy_async::time::TimeSource for OffClock {
    fn now(&self) -> std::time::SystemTime {
        let now = std::time::SystemTime::now();
        let by = Duration::from_secs(self.0.unsigned_abs());
        if self.0 < 0 { now - by } else { now + by }
    }
}

/// A client that signs with a clock `offset` seconds from real time.
fn client_off_by(url: &str, offset: i64) -> Client {
    let conf = aws_sdk_mturk::Config::builder()
        .behavior_version(aws_sdk_mturk::config::BehaviorVersion::latest())
        .region(aws_sdk_mturk::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_mturk::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(aws_sdk_mturk::config::retry::RetryConfig::disabled())
        .time_source(OffClock(offset))
        .build();
    Client::from_conf(conf)
}

/// Seconds since the Unix epoch of a `YYYYMMDDTHHMMSSZ` (as X-Amz-Date and AWS's messages
/// write a time).
fn amz_secs(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// With signatures checked and no clock skew configured, a request signed 20 minutes (or two
/// days) ago is refused as AWS refuses it — `InvalidSignatureException`, HTTP 400, `Signature
/// expired: <request> is now earlier than <now - 15 min> (<now> - 15 min.)` — and nothing is
/// applied; one signed 10 minutes ago is accepted. Without signature checking the times are
/// not compared (hand-written requests with fixed dates keep working).
#[tokio::test]
async fn signatures_checked_refuse_requests_signed_20_minutes_ago() {
    bounded(async {
        let emu = start(EmulatorConfig {
            credentials: Some(("AKIDTEST".into(), "secret".into())),
            ..EmulatorConfig::default()
        })
        .await;
        let url = emu.url();
        let h = emu.handle();
        let wording = regex::Regex::new(
            r"^Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) \((\d{8}T\d{6}Z) - 15 min\.\)$",
        )
        .unwrap();
        for behind in [20 * 60, 2 * 86_400] {
            let before = unix_now();
            let err = bonus(&client_off_by(&url, -behind), W1, A1, "1.00", Some("late"))
                .await
                .unwrap_err();
            let after = unix_now();
            assert_eq!(err.code(), Some("InvalidSignatureException"), "{behind} s");
            assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
            let message = err.message().unwrap_or_default();
            let parts = wording
                .captures(message)
                .unwrap_or_else(|| panic!("not AWS's wording: {message}"));
            let (request, limit, now) = (amz_secs(&parts[1]), amz_secs(&parts[2]), amz_secs(&parts[3]));
            assert!((before..=after).contains(&now), "the server's now: {message}");
            assert_eq!(now - limit, 15 * 60, "{message}");
            assert!(
                (before - behind..=after - behind).contains(&request),
                "the request's own time: {message}"
            );
        }
        assert!(h.ledger().is_empty(), "nothing applied");
        assert_eq!(h.stats().bad_signatures, 2);

        // Ten minutes off is inside the window.
        bonus(&client_off_by(&url, -10 * 60), W1, A1, "1.00", Some("late"))
            .await
            .unwrap();
        assert_eq!(h.ledger().len(), 1);
        emu.shutdown().await;

        // Without signature checking (and no skew), times are not compared.
        let emu = start(EmulatorConfig::default()).await;
        bonus(&client_off_by(&emu.url(), -20 * 60), W1, A1, "1.00", None)
            .await
            .unwrap();
        assert_eq!(emu.handle().ledger().len(), 1);
        emu.shutdown().await;
    })
    .await
}

/// `--clock-skew-secs` still simulates a skewed server when signatures are checked: the
/// window is around real time plus the skew, so with the server 20 minutes ahead a client
/// with the right time is refused and one 20 minutes ahead is accepted.
#[tokio::test]
async fn clock_skew_still_moves_the_window_of_checked_signatures() {
    bounded(async {
        let emu = start(EmulatorConfig {
            credentials: Some(("AKIDTEST".into(), "secret".into())),
            clock_skew_secs: Some(20 * 60),
            ..EmulatorConfig::default()
        })
        .await;
        let url = emu.url();
        assert_eq!(
            c_balance(&client_off_by(&url, 0)).await,
            (Some("InvalidSignatureException".into()), 400)
        );
        assert_eq!(c_balance(&client_off_by(&url, 20 * 60)).await, (None, 200));
        emu.shutdown().await;
    })
    .await
}

/// ListWorkersWithQualificationType without `Status` lists the granted qualifications only
/// (guesses.rs: `LIST_WORKERS_DEFAULT_STATUS`); revoked ones come with `Status: Revoked`.
#[tokio::test]
async fn list_workers_without_status_lists_only_granted_ones() {
    bounded(async {
        let emu = start(EmulatorConfig::default()).await;
        let c = client(&emu.url());
        let id = c
            .create_qualification_type()
            .name("Panel")
            .description("panel members")
            .qualification_type_status(QualificationTypeStatus::Active)
            .send()
            .await
            .unwrap()
            .qualification_type()
            .unwrap()
            .qualification_type_id()
            .unwrap()
            .to_owned();
        for w in [W1, W2] {
            c.associate_qualification_with_worker()
                .qualification_type_id(&id)
                .worker_id(w)
                .send_notification(false)
                .send()
                .await
                .unwrap();
        }
        c.disassociate_qualification_from_worker()
            .qualification_type_id(&id)
            .worker_id(W1)
            .send()
            .await
            .unwrap();
        let list = |status: Option<QualificationStatus>| {
            let c = c.clone();
            let id = id.clone();
            async move {
                let page = c
                    .list_workers_with_qualification_type()
                    .qualification_type_id(id)
                    .set_status(status)
                    .send()
                    .await
                    .unwrap();
                let listed: Vec<(String, QualificationStatus)> = page
                    .qualifications()
                    .iter()
                    .map(|q| {
                        (
                            q.worker_id().unwrap().to_owned(),
                            q.status().unwrap().clone(),
                        )
                    })
                    .collect();
                assert_eq!(page.num_results(), Some(listed.len() as i32));
                listed
            }
        };
        let granted = vec![(W2.to_owned(), QualificationStatus::Granted)];
        assert_eq!(list(None).await, granted, "no Status: granted only");
        assert_eq!(list(Some(QualificationStatus::Granted)).await, granted);
        assert_eq!(
            list(Some(QualificationStatus::Revoked)).await,
            vec![(W1.to_owned(), QualificationStatus::Revoked)]
        );
        emu.shutdown().await;
    })
    .await
}

/// The small differences from live samples, each as guesses.rs records it: an unknown
/// assignment's text ends `(<ms> s)`; GetAccountBalance answers no `OnHoldBalance`; an
/// unknown qualification type is named in brackets.
#[tokio::test]
async fn answers_match_the_live_samples() {
    bounded(async {
        let emu = start(EmulatorConfig {
            known: Some(known()),
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu.url());
        for message in [
            request_error(bonus(&c, W1, "3NOSUCHASSIGNMENT", "1.00", None).await),
            c.get_assignment()
                .assignment_id("3NOSUCHASSIGNMENT")
                .send()
                .await
                .unwrap_err()
                .message()
                .unwrap_or_default()
                .to_owned(),
        ] {
            assert!(message.ends_with(" s)"), "{message}");
            assert_eq!(
                strip_timestamp(&message),
                "Assignment 3NOSUCHASSIGNMENT does not exist."
            );
        }

        let balance = c.get_account_balance().send().await.unwrap();
        assert_eq!(balance.available_balance(), Some("10000.00"));
        assert_eq!(balance.on_hold_balance(), None);

        let err = c
            .associate_qualification_with_worker()
            .qualification_type_id("3NOSUCHTYPE")
            .worker_id(W1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("RequestError"));
        let message = err.message().unwrap_or_default();
        assert!(!message.ends_with(" s)"), "{message}");
        assert_eq!(
            strip_timestamp(message),
            "QualificationType [3NOSUCHTYPE] does not exist."
        );
        emu.shutdown().await;
    })
    .await
}
