//! The Prolific adapter: payout's calls to Prolific's researcher API over HTTP (reqwest), with
//! connect and call timeouts, a User-Agent naming payout and its version, `_links.next`
//! followed (on Prolific's own host only: the token is never sent elsewhere), and every answer
//! classified once, in `classify.rs`. Amounts Prolific returns are read from the JSON text
//! exactly (`283.34` pence stays `283.34`), never through a float.

mod classify;
mod wire;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

pub use classify::{answer_error, classify_status, is_not_found};
pub use wire::{GroupInfo, Me, StudyInfo, SubmissionInfo, WorkspaceBalance, WorkspaceInfo};

use super::{ChunkRow, ChunkedPlatform, ErrorClass, PlatformError, SetUpAnswer};
use crate::ids::{BulkBonusId, GroupId, StudyId, SubmissionId, WorkspaceId};
use crate::item::MemberAction;
use crate::money::ExactMinor;

/// Prolific's API host; payout adds `/api/v1/`.
pub const PRODUCTION_HOST: &str = "https://api.prolific.com";

/// The step that fixes a missing or refused token: said wherever a token is the trouble.
pub const TOKEN_FIX: &str =
    "create a token in Prolific (Workspace settings → API token) and set PROLIFIC_TOKEN=…";

/// Pages followed at most for one list (a loop guard: 10,000 pages of submissions).
const MAX_PAGES: usize = 10_000;

/// A Prolific API token. Never printed: its `Debug` and [`Token::hint`] show its last four
/// characters only.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())).then(|| Token(t.to_owned()))
    }

    /// `…abcd`: enough to tell two tokens apart.
    pub fn hint(&self) -> String {
        let n = self.0.chars().count();
        let tail: String = self.0.chars().skip(n.saturating_sub(4)).collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.hint())
    }
}

/// Connect and whole-call timeouts, like MTurk's.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    pub connect: Duration,
    pub call: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: Duration::from_secs(5),
            call: Duration::from_secs(30),
        }
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProlificSetupError {
    #[error("{0:?} is not an http(s) URL of a host (such as https://api.prolific.com)")]
    BadHost(String),
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
}

pub struct ProlificPlatform {
    client: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    host: String,
    token: Token,
}

impl ProlificPlatform {
    pub fn new(
        host: &str,
        token: Token,
        timeouts: HttpTimeouts,
    ) -> Result<ProlificPlatform, ProlificSetupError> {
        let host = host.trim().trim_end_matches('/');
        let rest = host
            .strip_prefix("https://")
            .or_else(|| host.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.contains('/') && !r.contains('@') => {}
            _ => return Err(ProlificSetupError::BadHost(host.to_owned())),
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.call)
            .user_agent(concat!("payout/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ProlificSetupError::Client)?;
        Ok(ProlificPlatform {
            client,
            host: host.to_owned(),
            token: token.clone(),
        })
    }

    pub fn token_hint(&self) -> String {
        self.token.hint()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{}", self.host, path.trim_start_matches('/'))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), PlatformError> {
        let mut req = self
            .client
            .request(method, url)
            .header("Authorization", format!("Token {}", self.token.0))
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let transport = |e: reqwest::Error| PlatformError {
            class: classify::classify_transport(&e),
            code: None,
            message: transport_text(&e),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| PlatformError {
            // The status arrived: the request was sent; a body cut short proves nothing more.
            class: ErrorClass::Ambiguous,
            code: None,
            message: transport_text(&e),
        })?;
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            Err(answer_error(status, &bytes))
        }
    }

    async fn get(&self, url: &str) -> Result<Bytes, PlatformError> {
        self.send(reqwest::Method::GET, url, None)
            .await
            .map(|(_, b)| b)
    }

    /// Every item of a list, following `_links.next` on this host.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
    ) -> Result<Vec<T>, PlatformError> {
        let mut out = Vec::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let body = self.get(&url).await?;
            let page: wire::Page<T> = wire::parse(&body)?;
            let next = page.next().map(str::to_owned);
            out.extend(page.results);
            match next.as_deref() {
                None => return Ok(out),
                Some(next) if next.starts_with(&format!("{}/api/v1/", self.host)) => {
                    url = next.to_owned();
                }
                Some(next) => {
                    return Err(PlatformError {
                        class: ErrorClass::Refused,
                        code: None,
                        message: format!(
                            "the next page is on another host ({}); payout sends its token to {} only",
                            next.chars().take(80).collect::<String>(),
                            self.host
                        ),
                    });
                }
            }
        }
        Err(PlatformError {
            class: ErrorClass::Refused,
            code: None,
            message: format!("more than {MAX_PAGES} pages in one list"),
        })
    }

    /// The token's user (`GET /users/me/`).
    pub async fn me(&self) -> Result<Me, PlatformError> {
        wire::parse(&self.get(&self.url("users/me/")).await?)
    }

    pub async fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, PlatformError> {
        self.all_pages(self.url("workspaces/")).await
    }

    pub async fn balance(&self, ws: &WorkspaceId) -> Result<WorkspaceBalance, PlatformError> {
        wire::parse(
            &self
                .get(&self.url(&format!("workspaces/{ws}/balance/")))
                .await?,
        )
    }

    /// A study, or `None` when Prolific does not know it (404).
    pub async fn study(&self, id: &StudyId) -> Result<Option<StudyInfo>, PlatformError> {
        match self.get(&self.url(&format!("studies/{id}/"))).await {
            Ok(b) => wire::parse(&b).map(Some),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every submission of a study, all pages.
    pub async fn study_submissions(
        &self,
        id: &StudyId,
    ) -> Result<Vec<SubmissionInfo>, PlatformError> {
        // 100 a page: Prolific documents `page_size` for submission lists but not its ceiling;
        // a server that ignores it still pages by `_links.next`.
        self.all_pages(self.url(&format!("studies/{id}/submissions/?page_size=100")))
            .await
    }
}

/// Members asked for a page of a group's member list (undocumented; a server that ignores it
/// still pages by `_links.next`).
const MEMBER_PAGE: u32 = 100;

impl ProlificPlatform {
    /// The workspace's live participant groups, all pages.
    pub async fn groups(&self, ws: &WorkspaceId) -> Result<Vec<GroupInfo>, PlatformError> {
        let all: Vec<GroupInfo> = self
            .all_pages(self.url(&format!("participant-groups/?workspace_id={ws}")))
            .await?;
        Ok(all.into_iter().filter(|g| !g.is_deleted).collect())
    }

    /// Creates an empty group in the workspace (`POST /participant-groups/`, never with
    /// members: they are added, journaled, like every other change).
    pub async fn create_group(
        &self,
        ws: &WorkspaceId,
        name: &str,
    ) -> Result<GroupInfo, PlatformError> {
        let body = serde_json::json!({ "name": name, "workspace_id": ws.as_str() });
        let (_, b) = self
            .send(
                reqwest::Method::POST,
                &self.url("participant-groups/"),
                Some(body.to_string().into_bytes()),
            )
            .await?;
        wire::parse(&b)
    }
}

impl crate::platform::GroupPlatform for ProlificPlatform {
    async fn change_members(
        &self,
        group: &GroupId,
        action: MemberAction,
        participants: &[String],
    ) -> Result<(), PlatformError> {
        // POST adds, DELETE removes; both take the ids in the body. PATCH of the group with
        // `participant_ids` would overwrite the whole membership: payout never sends it.
        let method = match action {
            MemberAction::Add => reqwest::Method::POST,
            MemberAction::Remove => reqwest::Method::DELETE,
        };
        let body = serde_json::json!({ "participant_ids": participants });
        self.send(
            method,
            &self.url(&format!("participant-groups/{group}/participants/")),
            Some(body.to_string().into_bytes()),
        )
        .await
        .map(|_| ())
    }

    async fn member_ids(
        &self,
        group: &GroupId,
    ) -> Result<std::collections::HashSet<String>, PlatformError> {
        let members: Vec<wire::Member> = self
            .all_pages(self.url(&format!(
                "participant-groups/{group}/participants/?limit={MEMBER_PAGE}"
            )))
            .await?;
        // Ids compare in lower case, the spelling payout keeps them in.
        Ok(members
            .into_iter()
            .map(|m| m.participant_id.to_ascii_lowercase())
            .collect())
    }
}

fn transport_text(e: &reqwest::Error) -> String {
    // reqwest's text names the URL, which holds no secret (the token is a header).
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

/// `<submission id>,<amount in major units>` lines, as Prolific's set-up reads them.
pub fn csv_bonuses(rows: &[ChunkRow]) -> String {
    let mut s = String::with_capacity(rows.len() * 32);
    for r in rows {
        s.push_str(r.submission.as_str());
        s.push(',');
        s.push_str(&r.amount.to_api_string());
        s.push('\n');
    }
    s
}

impl ChunkedPlatform for ProlificPlatform {
    async fn set_up(
        &self,
        study: &StudyId,
        rows: &[ChunkRow],
    ) -> Result<SetUpAnswer, PlatformError> {
        let body = serde_json::json!({
            "study_id": study.as_str(),
            "csv_bonuses": csv_bonuses(rows),
        });
        let (_, b) = self
            .send(
                reqwest::Method::POST,
                &self.url("submissions/bonus-payments/"),
                Some(body.to_string().into_bytes()),
            )
            .await?;
        wire::set_up_answer(&b)
    }

    async fn pay(&self, id: &BulkBonusId) -> Result<(), PlatformError> {
        self.send(
            reqwest::Method::POST,
            &self.url(&format!("bulk-bonus-payments/{id}/pay/")),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn submission_bonuses(
        &self,
        submission: &SubmissionId,
    ) -> Result<Vec<ExactMinor>, PlatformError> {
        let b = self
            .get(&self.url(&format!("submissions/{submission}/")))
            .await?;
        let s: wire::Submission = wire::parse(&b)?;
        s.bonus_payments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Cents;

    #[test]
    fn a_token_shows_only_its_last_four_characters() {
        let t = Token::new(" abcdefgh1234 ").unwrap();
        assert_eq!(t.hint(), "…1234");
        assert_eq!(format!("{t:?}"), "Token(…1234)");
        assert!(Token::new("").is_none());
        assert!(Token::new("two words").is_none());
    }

    #[test]
    fn hosts_are_urls_of_a_host_only() {
        let t = Token::new("x").unwrap();
        for bad in [
            "api.prolific.com",
            "https://",
            "https://a/api/v1",
            "ftp://a",
            "https://u:p@a",
        ] {
            assert!(
                ProlificPlatform::new(bad, t.clone(), HttpTimeouts::default()).is_err(),
                "{bad}"
            );
        }
        let p = ProlificPlatform::new("http://127.0.0.1:9/", t, HttpTimeouts::default()).unwrap();
        assert_eq!(p.url("users/me/"), "http://127.0.0.1:9/api/v1/users/me/");
    }

    #[test]
    fn set_up_lines_are_submission_and_major_units() {
        let rows = [
            ChunkRow {
                submission: SubmissionId::parse("60ffe5c8371090c7041d43f8").unwrap(),
                amount: Cents(425),
            },
            ChunkRow {
                submission: SubmissionId::parse("60ffe5c8371090c7041d43f9").unwrap(),
                amount: Cents(3000),
            },
        ];
        assert_eq!(
            csv_bonuses(&rows),
            "60ffe5c8371090c7041d43f8,4.25\n60ffe5c8371090c7041d43f9,30.00\n"
        );
    }
}
