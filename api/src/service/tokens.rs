//! Access tokens (short-lived JWT, HS256) and refresh tokens (`<session id>.<secret>`, the
//! secret stored only as a sha256 hash in `sessions`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppError;

#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub secret: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub exp: i64,
    pub iat: i64,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

impl TokenIssuer {
    pub fn new(s: TokenSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenIssuer {
            encoding: EncodingKey::from_secret(s.secret.as_bytes()),
            decoding: DecodingKey::from_secret(s.secret.as_bytes()),
            validation,
            access_ttl_secs: i64::try_from(s.access_ttl_secs).unwrap_or(900),
            refresh_ttl_secs: i64::try_from(s.refresh_ttl_secs).unwrap_or(2_592_000),
        }
    }

    pub fn issue_access(&self, user_id: Uuid, session_id: Uuid) -> Result<String, AppError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims { sub: user_id, sid: session_id, iat, exp: iat + self.access_ttl_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("signing access token")))
    }

    pub fn verify_access(&self, token: &str) -> Result<Claims, AppError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthenticated("access token expired".into())
                }
                _ => AppError::Unauthenticated("invalid access token".into()),
            }
        })
    }
}

/// What an upload URL's token carries: who uploads, under which session, the file's name,
/// and the token's own id (`jti`), which its single use is recorded under.
#[derive(Debug, Serialize, Deserialize)]
pub struct UploadClaims {
    pub jti: Uuid,
    pub sub: Uuid,
    pub sid: Uuid,
    pub aud: String,
    pub name: String,
    pub exp: i64,
    pub iat: i64,
}

const UPLOAD_AUDIENCE: &str = "syncchat-upload";

impl TokenIssuer {
    /// A token for one upload URL, valid `ttl_secs`. It is not an access token (its audience
    /// differs), and an access token is not an upload token.
    pub fn issue_upload(&self, user_id: Uuid, session_id: Uuid, name: &str, ttl_secs: i64) -> Result<String, AppError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = UploadClaims {
            jti: Uuid::now_v7(),
            sub: user_id,
            sid: session_id,
            aud: UPLOAD_AUDIENCE.into(),
            name: name.to_owned(),
            iat,
            exp: iat + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("signing upload token")))
    }

    pub fn verify_upload(&self, token: &str) -> Result<UploadClaims, AppError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[UPLOAD_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        jsonwebtoken::decode::<UploadClaims>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                AppError::Unauthenticated("the upload URL expired: ask for a new one".into())
            }
            _ => AppError::Unauthenticated("invalid upload URL".into()),
        })
    }
}

/// A fresh refresh token for `session_id`, and the hash to store.
pub fn new_refresh_token(session_id: Uuid) -> (String, String) {
    let secret: [u8; 32] = rand::random();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = hash_secret(&secret);
    (format!("{}.{}", session_id.simple(), secret), hash)
}

/// Splits a refresh token into its session id and the hash of its secret.
pub fn parse_refresh_token(token: &str) -> Result<(Uuid, String), AppError> {
    let invalid = || AppError::Unauthenticated("invalid refresh token".into());
    let (sid, secret) = token.trim().split_once('.').ok_or_else(invalid)?;
    let sid = Uuid::try_parse(sid).map_err(|_| invalid())?;
    if secret.is_empty() || secret.len() > 128 {
        return Err(invalid());
    }
    Ok((sid, hash_secret(secret)))
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(ttl: u64) -> TokenIssuer {
        TokenIssuer::new(TokenSettings { secret: "x".repeat(32), access_ttl_secs: ttl, refresh_ttl_secs: 60 })
    }

    #[test]
    fn access_token_round_trips_and_rejects_tampering() {
        let issuer = issuer(60);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = issuer.issue_access(user, session).unwrap_or_default();
        let claims = issuer.verify_access(&token).ok();
        assert_eq!(claims.map(|c| (c.sub, c.sid)), Some((user, session)));
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(issuer.verify_access(&tampered).is_err());
        let other =
            TokenIssuer::new(TokenSettings { secret: "y".repeat(32), access_ttl_secs: 60, refresh_ttl_secs: 60 });
        assert!(other.verify_access(&token).is_err());
    }

    #[test]
    fn refresh_token_parses_back_to_its_hash() {
        let sid = Uuid::now_v7();
        let (token, hash) = new_refresh_token(sid);
        assert_eq!(parse_refresh_token(&token).ok(), Some((sid, hash)));
        assert!(parse_refresh_token("garbage").is_err());
        assert!(parse_refresh_token("not-a-uuid.secret").is_err());
    }
}
