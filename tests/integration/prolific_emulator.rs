//! The Prolific emulator over loopback HTTP with a real client (reqwest): the shapes it
//! answers, paging, set up → pay → lands, a second pay paying again, groups, and every fault
//! mode proven to do what it says; plus `payout emulator --platform prolific` itself.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use payout::emulator::prolific::{
    DEFAULT_TOKEN, ErrorAfterStatus, FaultRates, ProlificConfig, ProlificHandle, ProlificSeed,
    ProlificState, RunningProlific,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Scratch;

/// A seeded world: one GBP workspace with £1,000.00, one study, `n` participants with one
/// submission each.
struct World {
    workspace: String,
    study: String,
    rows: Vec<(String, String)>,
}

fn world(n: usize) -> (ProlificSeed, World) {
    let mut seed = ProlificSeed::new();
    let workspace = seed.workspace("Lab", "GBP", 100_000);
    let study = seed.study(&workspace, "Study");
    let rows = seed.generate(&study, n);
    (
        seed,
        World {
            workspace,
            study,
            rows,
        },
    )
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    handle: ProlificHandle,
    _emulator: RunningProlific,
}

async fn start(state: ProlificState, config: ProlificConfig) -> Api {
    let emulator = RunningProlific::start_loopback(state, config)
        .await
        .expect("start the emulator");
    Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base: emulator.url(),
        token: Some(DEFAULT_TOKEN.to_owned()),
        handle: emulator.handle(),
        _emulator: emulator,
    }
}

impl Api {
    /// Status and body text, or the transport error (a dropped connection).
    async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, String), reqwest::Error> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.client.request(method, url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, text))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.try_call(method, path, body).await.expect("an answer");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn set_up(&self, study: &str, csv: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            "/api/v1/submissions/bonus-payments/",
            Some(json!({ "study_id": study, "csv_bonuses": csv })),
        )
        .await
    }

    async fn pay(&self, bulk: &str) -> Result<(u16, String), reqwest::Error> {
        self.try_call(
            Method::POST,
            &format!("/api/v1/bulk-bonus-payments/{bulk}/pay/"),
            None,
        )
        .await
    }

    /// Every item of a list, following `_links.next.href` to its end.
    async fn all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        let mut pages = 0;
        let mut count = None;
        while let Some(url) = next {
            let (status, page) = self.get(&url).await;
            assert_eq!(status, 200, "{url}: {page}");
            items.extend(page["results"].as_array().unwrap().iter().cloned());
            let c = page["meta"]["count"].as_u64().unwrap() as usize;
            assert_eq!(
                *count.get_or_insert(c),
                c,
                "meta.count is the same on every page"
            );
            next = page["_links"]["next"]["href"].as_str().map(str::to_owned);
            pages += 1;
        }
        assert_eq!(count, Some(items.len()), "meta.count is the list's length");
        (items, pages)
    }

    async fn bonus_payments(&self, submission: &str) -> Value {
        let (status, s) = self
            .get(&format!("/api/v1/submissions/{submission}/"))
            .await;
        assert_eq!(status, 200);
        s["bonus_payments"].clone()
    }
}

fn error_of(v: &Value) -> &Value {
    let e = &v["error"];
    for field in [
        "status",
        "error_code",
        "title",
        "detail",
        "additional_information",
    ] {
        assert!(e.get(field).is_some(), "no {field} in {v}");
    }
    e
}

#[tokio::test]
async fn tokens_are_required_and_paths_end_in_a_slash() {
    let (seed, _) = world(1);
    let mut api = start(seed.build(), ProlificConfig::default()).await;
    let (status, me) = api.get("/api/v1/users/me/").await;
    assert_eq!(status, 200);
    assert_eq!(me["currency_code"], "GBP");
    assert_eq!(me["available_balance"], 100_000);
    assert_eq!(api.get("/api/v1/users/me").await.0, 404);

    api.token = Some("not-a-token".into());
    let (status, body) = api.get("/api/v1/users/me/").await;
    assert_eq!(status, 401);
    assert_eq!(error_of(&body)["status"], 401);
    assert_eq!(error_of(&body)["detail"], "Invalid token.");
    api.token = None;
    let (status, body) = api.get("/api/v1/workspaces/").await;
    assert_eq!(status, 401);
    assert!(error_of(&body)["detail"].is_string());
    assert_eq!(api.handle.stats().unauthorized, 2);
}

#[tokio::test]
async fn simple_errors_answer_the_message_and_detail_shape() {
    let (seed, w) = world(1);
    let config = ProlificConfig {
        simple_errors: true,
        ..ProlificConfig::default()
    };
    let mut api = start(seed.build(), config).await;
    let (status, body) = api.set_up(&w.study, "nobody,1\n").await;
    assert_eq!(status, 400);
    assert!(body.get("error").is_none(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("nobody"),
        "{body}"
    );
    api.token = None;
    let (status, body) = api.get("/api/v1/users/me/").await;
    assert_eq!(status, 401);
    assert!(
        body["detail"].is_string() && body["message"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn workspace_balance_study_and_project_answer_prolifics_fields() {
    let (mut seed, w) = world(1);
    seed.reserve(&w.workspace, 20_000);
    let api = start(seed.build(), ProlificConfig::default()).await;
    let (_, list) = api.get("/api/v1/workspaces/").await;
    assert_eq!(list["meta"]["count"], 1);
    assert_eq!(list["results"][0]["id"], json!(w.workspace));
    let (status, b) = api
        .get(&format!("/api/v1/workspaces/{}/balance/", w.workspace))
        .await;
    assert_eq!(status, 200);
    assert_eq!(b["currency_code"], "GBP");
    assert_eq!(b["total_balance"], 100_000);
    assert_eq!(b["available_balance"], 80_000);
    for breakdown in ["balance_breakdown", "available_balance_breakdown"] {
        for part in ["rewards", "fees", "vat"] {
            assert!(b[breakdown][part].is_i64(), "{breakdown}.{part} in {b}");
        }
    }
    let (status, study) = api.get(&format!("/api/v1/studies/{}/", w.study)).await;
    assert_eq!(status, 200);
    assert_eq!(study["currency_code"], "GBP");
    let project = study["project"].as_str().unwrap();
    let (_, p) = api.get(&format!("/api/v1/projects/{project}/")).await;
    assert_eq!(p["workspace"], json!(w.workspace));
    assert_eq!(api.get("/api/v1/studies/nope/").await.0, 404);
    assert_eq!(api.get("/api/v1/workspaces/nope/balance/").await.0, 404);
}

#[tokio::test]
async fn both_submission_lists_page_to_the_end_with_bonus_payments_and_participants() {
    let (mut seed, w) = world(45);
    seed.paid_before(&w.rows[3].1, &[125]);
    let config = ProlificConfig {
        page_size: 10,
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let want: Vec<String> = w.rows.iter().map(|(_, s)| s.clone()).collect();
    for path in [
        format!("/api/v1/submissions/?study={}", w.study),
        format!("/api/v1/studies/{}/submissions/", w.study),
        format!("/api/v1/studies/{}/submissions/?limit=7&offset=0", w.study),
    ] {
        let (items, pages) = api.all(&path).await;
        let got: Vec<String> = items
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "{path}");
        assert!(pages >= 5, "{path}: {pages} pages");
        assert_eq!(items[3]["bonus_payments"], json!([125]));
        assert_eq!(items[0]["participant_id"], json!(w.rows[0].0));
    }
    // A seeded baseline is not something a pay landed.
    assert!(api.handle.landed_by_participant(&w.study).is_empty());
    assert_eq!(
        api.handle.paid_by_participant(&w.study)[&w.rows[3].0],
        vec![125]
    );
    // A page past the end is a 404, as documented.
    let (status, body) = api
        .get(&format!("/api/v1/submissions/?study={}&page=6", w.study))
        .await;
    assert_eq!(status, 404);
    error_of(&body);
    let (_, one) = api
        .get(&format!("/api/v1/submissions/{}/", w.rows[3].1))
        .await;
    assert_eq!(one["participant"], json!(w.rows[3].0));
    assert_eq!(one["study_id"], json!(w.study));
    assert_eq!(one["bonus_payments"], json!([125]));
}

#[tokio::test]
async fn set_up_pays_nothing_pay_lands_and_a_second_pay_pays_again() {
    let (seed, w) = world(2);
    let api = start(seed.build(), ProlificConfig::default()).await;
    let (p0, s0) = w.rows[0].clone();
    let s1 = w.rows[1].1.clone();
    // One row by participant ID, one by submission ID.
    let (status, text) = api
        .try_call(
            Method::POST,
            "/api/v1/submissions/bonus-payments/",
            Some(json!({ "study_id": w.study, "csv_bonuses": format!("{p0},4.25\n{s1},4.25\n") })),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{text}");
    // Prolific's own example: fractional minor units.
    assert!(text.contains("283.34"), "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["study"], json!(w.study));
    assert_eq!(b["amount"], 850);
    assert_eq!(b["vat"], 0);
    assert_eq!(b["total_amount"], 1133.34);
    let bulk = b["id"].as_str().unwrap().to_owned();
    assert_eq!(api.bonus_payments(&s0).await, json!([]));

    let (status, text) = api.pay(&bulk).await.unwrap();
    assert_eq!(status, 202);
    assert!(serde_json::from_str::<Value>(&text).unwrap().is_string());
    assert_eq!(api.bonus_payments(&s0).await, json!([425]));
    assert_eq!(api.bonus_payments(&s1).await, json!([425]));
    let (_, bal) = api
        .get(&format!("/api/v1/workspaces/{}/balance/", w.workspace))
        .await;
    // 100,000 − 1,133.34, shown in whole minor units.
    assert_eq!(bal["total_balance"], 98_866);
    assert!(api.handle.double_payments().is_empty());

    assert_eq!(api.pay(&bulk).await.unwrap().0, 202);
    assert_eq!(api.bonus_payments(&s0).await, json!([425, 425]));
    let doubles = api.handle.double_payments();
    assert_eq!(doubles.len(), 1);
    assert_eq!(
        (doubles[0].bulk_id.as_str(), doubles[0].pays),
        (bulk.as_str(), 2)
    );
    let (_, stats) = api.get("/_emulator/stats").await;
    assert_eq!(stats["double_payments"][0]["bulk_id"], json!(bulk));
    assert_eq!(
        stats["calls"]["POST /api/v1/bulk-bonus-payments/{id}/pay/"],
        2
    );
    let (_, state) = api.get("/_emulator/state").await;
    assert_eq!(state["bulk_bonus_payments"][0]["pays"], 2);
    assert_eq!(api.handle.bulk_pays()[&bulk], 2);
    assert_eq!(
        api.handle.paid_by_participant(&w.study)[&p0],
        vec![425, 425]
    );
    assert_eq!(
        api.handle.landed_by_participant(&w.study)[&p0],
        vec![425, 425]
    );
    assert_eq!(api.pay("nope").await.unwrap().0, 404);
}

#[tokio::test]
async fn ids_outside_the_study_are_named_and_nothing_is_set_up() {
    let (mut seed, w) = world(1);
    let other_study = seed.study(&w.workspace, "Other");
    let stranger = seed.generate(&other_study, 1).remove(0);
    let api = start(seed.build(), ProlificConfig::default()).await;
    let csv = format!("{},1.00\n{},2.00\nnobody,3\n", w.rows[0].0, stranger.1);
    let (status, body) = api.set_up(&w.study, &csv).await;
    assert_eq!(status, 400);
    let detail = error_of(&body)["detail"]["csv_bonuses"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains(&stranger.1) && detail.contains("nobody"),
        "{detail}"
    );
    assert!(!detail.contains(&w.rows[0].0), "{detail}");
    let (status, _) = api
        .set_up(&w.study, &format!("{},1.234\n", w.rows[0].0))
        .await;
    assert_eq!(status, 400);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/submissions/bonus-payments/",
            Some(json!({ "csv_bonuses": "x,1" })),
        )
        .await;
    assert_eq!(status, 400);
    assert!(error_of(&body)["detail"]["study_id"].is_array());
    assert_eq!(api.handle.stats().setups, 0);
    assert!(api.handle.bulk_pays().is_empty());
}

#[tokio::test]
async fn lost_after_apply_a_lost_pay_answer_still_pays_and_a_lost_set_up_exists() {
    let (seed, w) = world(1);
    let config = ProlificConfig {
        setup_faults: FaultRates::uniform(0.0, 1.0, 0.0),
        pay_faults: FaultRates::uniform(0.0, 1.0, 0.0),
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let csv = format!("{},2.00\n", w.rows[0].1);
    assert!(
        api.try_call(
            Method::POST,
            "/api/v1/submissions/bonus-payments/",
            Some(json!({ "study_id": w.study, "csv_bonuses": csv })),
        )
        .await
        .is_err(),
        "the client sees a dropped connection"
    );
    let bulks = api.handle.bulk_pays();
    assert_eq!(bulks.len(), 1, "the set-up was applied");
    let bulk = bulks.keys().next().unwrap().clone();

    assert!(api.pay(&bulk).await.is_err(), "the pay's answer is lost");
    let stats = api.handle.stats();
    assert_eq!(stats.lost_after_apply, 2);
    assert_eq!(stats.pays_accepted, 1);
    assert_eq!(api.handle.bonus_payments(&w.rows[0].1), Some(vec![200]));
}

#[tokio::test]
async fn five_hundred_after_apply_still_pays_in_json_and_as_a_proxy_page() {
    for (status_kind, want) in [
        (ErrorAfterStatus::Internal, 500),
        (ErrorAfterStatus::BadGateway, 502),
    ] {
        let (seed, w) = world(1);
        let api = start(seed.build(), ProlificConfig::default()).await;
        let (_, b) = api
            .set_up(&w.study, &format!("{},1.50\n", w.rows[0].1))
            .await;
        let bulk = b["id"].as_str().unwrap().to_owned();
        api.handle.update_config(|c| {
            c.pay_faults = FaultRates::uniform(0.0, 0.0, 1.0);
            c.error_after_status = status_kind;
        });
        let (status, text) = api.pay(&bulk).await.unwrap();
        assert_eq!(status, want, "{text}");
        if want == 500 {
            error_of(&serde_json::from_str(&text).unwrap());
        }
        assert_eq!(api.handle.stats().errors_after_apply, 1);
        assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([150]));
    }
}

#[tokio::test]
async fn dropped_before_apply_pays_nothing_and_a_later_pay_is_the_first() {
    let (seed, w) = world(1);
    let api = start(seed.build(), ProlificConfig::default()).await;
    let (_, b) = api.set_up(&w.study, &format!("{},3\n", w.rows[0].1)).await;
    let bulk = b["id"].as_str().unwrap().to_owned();
    api.handle
        .update_config(|c| c.pay_faults = FaultRates::uniform(1.0, 0.0, 0.0));
    assert!(api.pay(&bulk).await.is_err());
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([]));
    let stats = api.handle.stats();
    assert_eq!((stats.dropped_before_apply, stats.pays_accepted), (1, 0));
    // A set-up dropped before apply creates nothing.
    api.handle
        .update_config(|c| c.setup_faults = FaultRates::uniform(1.0, 0.0, 0.0));
    assert!(
        api.try_call(
            Method::POST,
            "/api/v1/submissions/bonus-payments/",
            Some(json!({ "study_id": w.study, "csv_bonuses": format!("{},3\n", w.rows[0].1) })),
        )
        .await
        .is_err()
    );
    assert_eq!(api.handle.bulk_pays().len(), 1);

    api.handle.update_config(|c| {
        c.pay_faults = FaultRates::default();
        c.setup_faults = FaultRates::default();
    });
    assert_eq!(api.pay(&bulk).await.unwrap().0, 202);
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([300]));
    assert!(api.handle.double_payments().is_empty());
}

#[tokio::test]
async fn overlapping_money_calls_in_one_workspace_get_429_and_are_not_applied() {
    let (mut seed, w) = world(1);
    let other_ws = seed.workspace("Other lab", "USD", 100_000);
    let other_study = seed.study(&other_ws, "Other");
    let other = seed.generate(&other_study, 1).remove(0);
    let config = ProlificConfig {
        // Far longer than the test: the overlap is decided by the emulator clock only.
        contention_window: Some(Duration::from_secs(3600)),
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let csv = format!("{},1\n", w.rows[0].1);
    let (status, b) = api.set_up(&w.study, &csv).await;
    assert_eq!(status, 201);
    let bulk = b["id"].as_str().unwrap().to_owned();

    let (status, body) = api.set_up(&w.study, &csv).await;
    assert_eq!(status, 429);
    assert_eq!(error_of(&body)["status"], 429);
    let (status, text) = api.pay(&bulk).await.unwrap();
    assert_eq!(status, 429, "{text}");
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([]));
    // Another workspace's wallet is not contended; reads never are.
    let (status, _) = api.set_up(&other_study, &format!("{},1\n", other.1)).await;
    assert_eq!(status, 201);
    let stats = api.handle.stats();
    assert_eq!(
        (stats.contention_429, stats.setups, stats.pays_accepted),
        (2, 2, 0)
    );

    api.handle.advance_clock(Duration::from_secs(3601));
    assert_eq!(api.pay(&bulk).await.unwrap().0, 202);
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([100]));
}

#[tokio::test]
async fn with_contended_pay_applies_a_429_pay_still_lands() {
    let (seed, w) = world(1);
    let config = ProlificConfig {
        contention_window: Some(Duration::from_secs(3600)),
        contended_pay_applies: true,
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let (_, b) = api.set_up(&w.study, &format!("{},1\n", w.rows[0].1)).await;
    let (status, _) = api.pay(b["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 429, "the set-up still holds the workspace");
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([100]));
    let stats = api.handle.stats();
    assert_eq!((stats.contended_pays_applied, stats.pays_accepted), (1, 1));
}

#[tokio::test]
async fn a_late_pay_lands_only_after_its_delay() {
    let (seed, w) = world(1);
    let config = ProlificConfig {
        late_pay_rate: 1.0,
        late_pay_delay: Duration::from_secs(600),
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let (_, b) = api.set_up(&w.study, &format!("{},5\n", w.rows[0].0)).await;
    assert_eq!(api.pay(b["id"].as_str().unwrap()).await.unwrap().0, 202);
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([]));
    assert_eq!(api.handle.pending_pays(), 1);
    api.handle.advance_clock(Duration::from_secs(599));
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([]));
    let (status, _) = api
        .call(Method::POST, "/_emulator/clock?advance_secs=1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([500]));
    assert_eq!(api.handle.pending_pays(), 0);
}

#[test]
fn a_delayed_pay_lands_with_no_request_and_wait_for_sees_it() {
    let (seed, w) = world(1);
    let config = ProlificConfig {
        pay_delay: Duration::from_millis(300),
        ..ProlificConfig::default()
    };
    let emu = payout::emulator::prolific::BackgroundProlific::start(seed.build(), config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = emu.url();
    let status = runtime.block_on(async {
        let client = reqwest::Client::new();
        let call = |path: String, body: Option<Value>| {
            let mut req = client
                .post(format!("{url}{path}"))
                .header("Authorization", format!("Token {DEFAULT_TOKEN}"));
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&b).unwrap());
            }
            req.send()
        };
        let setup = call(
            "/api/v1/submissions/bonus-payments/".into(),
            Some(json!({ "study_id": w.study, "csv_bonuses": format!("{},1\n", w.rows[0].1) })),
        )
        .await
        .unwrap();
        let b: Value = serde_json::from_slice(&setup.bytes().await.unwrap()).unwrap();
        let id = b["id"].as_str().unwrap().to_owned();
        call(format!("/api/v1/bulk-bonus-payments/{id}/pay/"), None)
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 202);
    let handle = emu.handle();
    assert_eq!(handle.pending_pays(), 1);
    // No request follows: the landing itself ends the wait (woken at the due time; that it is
    // not the timeout is not asserted, which would take a timed assertion).
    assert!(handle.wait_for(Duration::from_secs(60), |s| s.pays_landed == 1));
    assert_eq!(handle.bonus_payments(&w.rows[0].1), Some(vec![100]));
}

#[tokio::test]
async fn a_set_up_that_will_not_pay_and_an_unfunded_pay_are_refused_and_nothing_lands() {
    let (mut seed, w) = world(1);
    let poor = seed.workspace("Poor lab", "GBP", 1_000);
    let poor_study = seed.study(&poor, "Poor");
    let poor_row = seed.generate(&poor_study, 1).remove(0);
    let config = ProlificConfig {
        unpayable_rate: 1.0,
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let (status, b) = api.set_up(&w.study, &format!("{},1\n", w.rows[0].1)).await;
    assert_eq!(
        status, 201,
        "a set-up that will not pay looks like any other"
    );
    let (status, text) = api.pay(b["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 400);
    error_of(&serde_json::from_str(&text).unwrap());

    api.handle.update_config(|c| c.unpayable_rate = 0.0);
    // £9 + £3 fees > £10 available.
    let (_, b) = api
        .set_up(&poor_study, &format!("{},9\n", poor_row.1))
        .await;
    let (status, text) = api.pay(b["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 400);
    assert!(text.contains("nsufficient"), "{text}");
    let stats = api.handle.stats();
    assert_eq!(
        (
            stats.pays_refused_will_not_pay,
            stats.pays_refused_insufficient,
            stats.pays_accepted
        ),
        (1, 1, 0)
    );
    assert_eq!(api.bonus_payments(&w.rows[0].1).await, json!([]));
    assert_eq!(api.handle.total_balance_centi(&poor), Some(100_000));
}

#[tokio::test]
async fn groups_idempotent_members_paged_listing_patch_overwrite_and_soft_delete() {
    let (mut seed, w) = world(0);
    let people: Vec<String> = (0..25).map(|_| seed.participant()).collect();
    let config = ProlificConfig {
        page_size: 10,
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let (status, g) = api
        .call(
            Method::POST,
            "/api/v1/participant-groups/",
            Some(json!({ "name": "Completed 1", "workspace_id": w.workspace, "participant_ids": people[..2] })),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(g["participant_count"], 2);
    assert_eq!(g["is_deleted"], false);
    let id = g["id"].as_str().unwrap().to_owned();
    let members = format!("/api/v1/participant-groups/{id}/participants/");

    for _ in 0..2 {
        let (status, body) = api
            .call(
                Method::POST,
                &members,
                Some(json!({ "participant_ids": people })),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["results"].as_array().unwrap().len(), 25);
    }
    let (listed, pages) = api.all(&members).await;
    assert_eq!((listed.len(), pages), (25, 3));
    assert!(listed[0]["datetime_created"].is_string());
    let (status, body) = api
        .call(
            Method::DELETE,
            &members,
            Some(json!({ "participant_ids": [people[0], "not-a-member"] })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 24);
    assert!(api.handle.stats().patch_overwrites.is_empty());

    let (status, g) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/participant-groups/{id}/"),
            Some(json!({ "participant_ids": [people[0]] })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(g["participant_count"], 1);
    let overwrites = api.handle.stats().patch_overwrites;
    assert_eq!(overwrites.len(), 1);
    assert_eq!(overwrites[0].removed.len(), 24);
    assert_eq!(overwrites[0].added, vec![people[0].clone()]);

    let (_, list) = api
        .get(&format!(
            "/api/v1/participant-groups/?workspace_id={}",
            w.workspace
        ))
        .await;
    assert_eq!(list["meta"]["count"], 1);
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/participant-groups/{id}/"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, g) = api.get(&format!("/api/v1/participant-groups/{id}/")).await;
    assert_eq!((status, &g["is_deleted"]), (200, &json!(true)));
    let (_, list) = api
        .get(&format!(
            "/api/v1/participant-groups/?workspace_id={}",
            w.workspace
        ))
        .await;
    assert_eq!(list["meta"]["count"], 0);
    assert_eq!(api.get(&members).await.0, 404);
    assert!(api.handle.group_deleted(&id));
}

#[tokio::test]
async fn group_faults_drop_before_changes_nothing_lost_after_changes_membership() {
    let (mut seed, w) = world(0);
    let a = seed.participant();
    let group = seed.group(&w.workspace, "Block list", &[]);
    let config = ProlificConfig {
        group_faults: FaultRates::uniform(1.0, 0.0, 0.0),
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let members = format!("/api/v1/participant-groups/{group}/participants/");
    let add = json!({ "participant_ids": [a] });
    assert!(
        api.try_call(Method::POST, &members, Some(add.clone()))
            .await
            .is_err()
    );
    assert_eq!(api.handle.group_members(&group).unwrap().len(), 0);
    // Reads stay clean: they have their own rates.
    assert_eq!(api.get(&members).await.0, 200);

    api.handle
        .update_config(|c| c.group_faults = FaultRates::uniform(0.0, 1.0, 0.0));
    assert!(
        api.try_call(Method::POST, &members, Some(add))
            .await
            .is_err()
    );
    assert!(api.handle.group_members(&group).unwrap().contains(&a));
    let stats = api.handle.stats();
    assert_eq!((stats.dropped_before_apply, stats.lost_after_apply), (1, 1));
}

#[tokio::test]
async fn many_rows_set_up_in_one_call_land_on_every_submission() {
    let (seed, w) = world(1500);
    let api = start(seed.build(), ProlificConfig::default()).await;
    let csv: String = w.rows.iter().map(|(p, _)| format!("{p},0.10\n")).collect();
    let (status, b) = api.set_up(&w.study, &csv).await;
    assert_eq!(status, 201);
    assert_eq!(b["amount"], 15_000);
    assert_eq!(api.pay(b["id"].as_str().unwrap()).await.unwrap().0, 202);
    let paid = api.handle.paid_by_participant(&w.study);
    assert_eq!(paid.len(), 1500);
    assert!(paid.values().all(|v| v == &vec![10]));
}

/// The outcome of each of `n` set-up + pay pairs under seeded pay faults: Ok(status) or a
/// transport error.
async fn seeded_pays(seed: u64, n: usize) -> (Vec<Result<u16, ()>>, ProlificHandle, World) {
    let (s, w) = world(n);
    let config = ProlificConfig {
        seed,
        pay_faults: FaultRates::uniform(0.0, 0.3, 0.2),
        ..ProlificConfig::default()
    };
    let api = start(s.build(), config).await;
    let mut outcomes = Vec::new();
    for (_, submission) in &w.rows {
        let (status, b) = api.set_up(&w.study, &format!("{submission},1\n")).await;
        assert_eq!(status, 201);
        outcomes.push(
            api.pay(b["id"].as_str().unwrap())
                .await
                .map(|(status, _)| status)
                .map_err(|_| ()),
        );
    }
    (outcomes, api.handle.clone(), w)
}

#[tokio::test]
async fn fault_picks_are_seeded_and_every_pay_lands_whatever_its_answer() {
    let (first, handle, w) = seeded_pays(7, 40).await;
    let (again, _, _) = seeded_pays(7, 40).await;
    assert_eq!(first, again, "same seed, same picks");
    let (other, _, _) = seeded_pays(8, 40).await;
    assert_ne!(first, other, "another seed, other picks");

    let lost = first.iter().filter(|o| o.is_err()).count();
    let errors = first
        .iter()
        .filter(|o| matches!(o, Ok(s) if *s >= 500))
        .count();
    let stats = handle.stats();
    assert!(lost > 0 && errors > 0, "{first:?}");
    assert_eq!(
        (stats.lost_after_apply, stats.errors_after_apply),
        (lost as u64, errors as u64)
    );
    assert_eq!(stats.pays_accepted, 40);
    for (_, submission) in &w.rows {
        assert_eq!(handle.bonus_payments(submission), Some(vec![100]));
    }
}

#[tokio::test]
async fn two_money_calls_in_flight_at_once_overlap_and_one_gets_429() {
    let (seed, w) = world(2);
    let config = ProlificConfig {
        // The first call is still being answered when the second arrives.
        latency: Duration::from_secs(2),
        contention_window: Some(Duration::ZERO),
        ..ProlificConfig::default()
    };
    let api = start(seed.build(), config).await;
    let a = format!("{},1\n", w.rows[0].1);
    let b = format!("{},1\n", w.rows[1].1);
    let ((s1, _), (s2, _)) = tokio::join!(api.set_up(&w.study, &a), api.set_up(&w.study, &b));
    let mut statuses = [s1, s2];
    statuses.sort();
    assert_eq!(statuses, [201, 429]);
    assert_eq!(api.handle.stats().setups, 1);
}

fn kill(child: &std::process::Child, signal: &str) {
    std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
}

#[tokio::test]
async fn payout_emulator_platform_prolific_prints_url_token_and_ids_and_stops_on_sigterm() {
    let s = Scratch::new();
    let ids = s.path("ids.csv");
    let mut emu = s
        .payout(&[
            "emulator",
            "--platform",
            "prolific",
            "--port",
            "0",
            "--participants",
            "3",
            "--ids-file",
            ids.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(emu.stdout.take().unwrap()).lines();
    let mut announced = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("try:");
        announced.push(line);
        if done {
            break;
        }
    }
    let url = announced[0]
        .strip_prefix("payout emulator listening on ")
        .unwrap_or_else(|| panic!("{announced:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let token = announced
        .iter()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .to_owned();
    let study = announced
        .iter()
        .find_map(|l| l.strip_prefix("study: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let written = std::fs::read_to_string(&ids).unwrap();
    assert_eq!(written.lines().count(), 5, "{written}");
    assert!(written.starts_with("participant_id,submission_id,study_id\n"));

    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{url}/api/v1/studies/{study}/submissions/"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let list: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(list["meta"]["count"], 4);

    // The command it prints works as printed: a dry run, then the same with --production.
    let try_line = announced.last().unwrap();
    let command = try_line
        .split_once(" payout ")
        .and_then(|(_, rest)| rest.split_once("   ("))
        .map(|(args, _)| args)
        .unwrap_or_else(|| panic!("{try_line}"));
    let first = written.lines().nth(1).unwrap().split(',').next().unwrap();
    let bonuses = s.write(
        "bonuses.csv",
        &format!("participant_id,amount\n{first},1.25\n"),
    );
    let mut args: Vec<String> = command
        .split_whitespace()
        .map(|a| {
            if a == "bonuses.csv" {
                bonuses.to_str().unwrap().to_owned()
            } else {
                a.to_owned()
            }
        })
        .collect();
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s
            .payout(&args)
            .env("PROLIFIC_TOKEN", &token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&args);
    args.retain(|a| a != "--dry-run");
    args.extend(["--production".to_owned(), "--yes".to_owned()]);
    run(&args);
    let stats: Value = serde_json::from_slice(
        &client
            .get(format!("{url}/_emulator/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&stats["pays_landed"], &stats["double_payments"]),
        (&json!(1), &json!([]))
    );

    kill(&emu, "-TERM");
    assert!(emu.wait().unwrap().success(), "stops cleanly on SIGTERM");
}

#[test]
fn payout_emulator_platform_prolific_stops_cleanly_on_ctrl_c() {
    let s = Scratch::new();
    let mut emu = s
        .payout(&["emulator", "--platform", "prolific", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(emu.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("payout emulator listening on http://127.0.0.1:"),
        "{first}"
    );
    kill(&emu, "-INT");
    assert!(emu.wait().unwrap().success(), "stops cleanly on SIGINT");
}

#[test]
fn payout_emulator_refuses_remote_hosts_and_the_other_platforms_flags() {
    let s = Scratch::new();
    for (args, says) in [
        (
            vec!["emulator", "--platform", "prolific", "--host", "0.0.0.0"],
            "--allow-remote",
        ),
        (
            vec!["emulator", "--platform", "prolific", "--throttle-rps", "3"],
            "--throttle-rps",
        ),
        (
            vec!["emulator", "--contention-ms", "10"],
            "--platform prolific",
        ),
        (
            vec!["emulator", "--platform", "prolific", "--currency", "EUR"],
            "GBP and USD",
        ),
    ] {
        let out = s.run(&args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}
