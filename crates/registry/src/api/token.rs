//! The token endpoint (`/token`): Docker's token flow (GET with optional Basic credentials and `scope`
//! parameters) and the OAuth2 password grant (POST form), answering a signed JWT with what the caller may do.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{query_all, ApiError, AppState};
use crate::auth::{basic_credentials, Mode, Principal};

const MAX_FORM: usize = 64 * 1024;

pub(super) async fn handle(st: &AppState, req: Request) -> Result<Response, ApiError> {
    let Mode::Token(ts) = &st.auth.mode else {
        return Err(ApiError::NotFound);
    };
    let unauthorized = || ApiError::Unauthorized {
        challenge: "Basic realm=\"token\"".into(),
    };
    let (creds, scopes) = match *req.method() {
        Method::GET => {
            let scopes = query_all(req.uri())
                .into_iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v)
                .collect::<Vec<_>>();
            (basic_credentials(req.headers()), scopes)
        }
        Method::POST => {
            let body = super::manifests::read_limited(req, MAX_FORM).await?;
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).map_err(|_| ApiError::BadRequest {
                    code: "UNSUPPORTED",
                    message: "malformed form".into(),
                })?;
            let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
            if get("grant_type").as_deref() != Some("password") {
                return Err(ApiError::BadRequest {
                    code: "UNSUPPORTED",
                    message: "only the password grant is supported".into(),
                });
            }
            let creds = get("username").zip(get("password"));
            (creds, get("scope").into_iter().collect())
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let who = match creds {
        None => Principal::Anonymous,
        Some((u, p)) => match &st.auth.users {
            Some(users) if users.verify(&u, &p) => Principal::User(u),
            _ => return Err(unauthorized()),
        },
    };
    let access = ts.grant(&st.auth.rules, &who, &scopes);
    let token = ts.issue(&who, access);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": ts.ttl().as_secs(),
        "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response())
}
