//! Rendering helpers shared by the subcommands: JSON on stdout, times for people.

use std::io::Write as _;

use serde_json::{Map, Value, json};

use crate::session::{self, display_name};
use crate::store::{Record, Status};

/// Prints JSON on stdout. A closed pipe (`lanyard … --json | head`) is not an error.
pub fn print_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// Prints a line on stdout, ignoring a closed pipe.
pub fn print_line(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The JSON shape of a sign-in record, shared by `login --json`, `whoami --json` and
/// `status --json`.
pub fn record_json(record: &Record) -> Value {
    let claims = record.claims();
    let pick = |k: &str| claims.get(k).cloned().unwrap_or(Value::Null);
    let (status, reason) = match &record.status {
        Status::SignedIn => ("signed_in", Value::Null),
        Status::SignInNeeded { reason } => ("sign_in_needed", json!(reason)),
    };
    json!({
        "account": record.account,
        "status": status,
        "reason": reason,
        "issuer": record.issuer,
        "client_id": record.client_id,
        "subject": record.subject,
        "name": pick("name"),
        "email": pick("email"),
        "picture": pick("picture"),
        "groups": groups(&claims),
        "roles": claims.get("roles").cloned().unwrap_or(json!([])),
        "scopes": record.scopes,
        "store": record.store,
        "signed_in_at": rfc3339(record.signed_in_at),
        "access_token_expires_at": record.access_token_expires_at.map(rfc3339),
        "refreshable": record.refreshable,
        "response_type": record.response_type,
        "id_token_expires_at": record.id_token_expires_at.map(rfc3339),
        "claims": claims,
        "access_token_claims": record.access_token_claims,
    })
}

/// Groups under any of the names providers use for them.
pub fn groups(claims: &Map<String, Value>) -> Value {
    for key in ["groups", "group"] {
        match claims.get(key) {
            Some(Value::Array(a)) => return Value::Array(a.clone()),
            Some(Value::String(s)) => return json!([s]),
            _ => {}
        }
    }
    json!([])
}

/// "Alice Example <alice@example.test>" or the best name there is.
pub fn who(record: &Record) -> String {
    let claims = record.claims();
    let name = display_name(&claims).unwrap_or(&record.subject).to_owned();
    match claims.get("email").and_then(Value::as_str) {
        Some(email) if email != name => format!("{name} <{email}>"),
        _ => name,
    }
}

/// "valid for 58 min", "expired 3 min ago", "no expiry given".
pub fn validity(expires_at: Option<u64>) -> String {
    let now = session::now();
    match expires_at {
        None => "no expiry given".into(),
        Some(e) if e > now => format!("valid for {}", duration(e - now)),
        Some(e) => format!("expired {} ago", duration(now - e)),
    }
}

pub fn duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// Unix seconds as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(3540), "59 min");
        assert_eq!(duration(7500), "2 h 5 min");
    }
}
