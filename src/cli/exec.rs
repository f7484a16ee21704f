//! `lanyard exec`: runs a command with fresh access tokens in its environment, the way
//! `op run` and `aws-vault exec` do, for tools that read a token from a variable (npm's
//! `.npmrc` `${NPM_TOKEN}`, scripts, CI steps). Tokens never go on a command line, where
//! every user's `ps` sees them; the command's exit status is this one's.

use std::ffi::OsString;

use super::Opener;
use crate::{Error, Kind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `VAR=ACCOUNT[:FORMAT]`: put ACCOUNT's access token in VAR; FORMAT is `raw` (the
    /// token, the default) or `bearer` (`Bearer TOKEN`, an Authorization header's value).
    /// Without any: LANYARD_ACCESS_TOKEN, for the account the [[match]] rules pick here
    #[arg(long = "env", value_name = "VAR=ACCOUNT[:FORMAT]")]
    env: Vec<String>,
    /// Each token stays valid at least this many seconds after the command starts
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    min_valid: u64,
    /// The command to run, and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

/// One `--env`: the variable, the account and how the token is written.
#[derive(Debug, PartialEq)]
struct Wanted {
    var: String,
    account: String,
    bearer: bool,
}

/// Runs the command in this process's place (Unix), or as a child whose exit status is
/// this process's (Windows). Returns only on failure.
pub async fn run(open: &Opener, args: Args) -> Result<(), Error> {
    let mut wanted = args
        .env
        .iter()
        .map(|spec| parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    if wanted.is_empty() {
        let (account, _) = open.account(None)?;
        wanted.push(Wanted {
            var: "LANYARD_ACCESS_TOKEN".into(),
            account,
            bearer: false,
        });
    }
    let interactive = super::person_at_terminal();
    let own = crate::flow::Target::default();
    let mut env = Vec::new();
    for w in &wanted {
        let token = open
            .token_or_sign_in(&w.account, args.min_valid, &own, interactive)
            .await?;
        if token.dpop {
            eprintln!(
                "lanyard: warning: {}'s token is DPoP-bound: a server that checks the binding refuses it without a proof; set `dpop = false` for {} and sign in again",
                w.account, w.account
            );
        }
        let value = token.token.expose();
        // A token on the command line is in every user's `ps`: refused, not run.
        if args
            .command
            .iter()
            .any(|arg| arg.to_string_lossy().contains(value))
        {
            return Err(Error::Usage {
                kind: Kind::Config,
                message: format!(
                    "{}'s token is on the command line, where any user's `ps` sees it: refer to ${} in the command's own configuration instead",
                    w.account, w.var
                ),
            });
        }
        let value = if w.bearer {
            format!("Bearer {value}")
        } else {
            value.to_owned()
        };
        env.push((w.var.clone(), value));
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut command = std::process::Command::new(program);
    command.args(rest).envs(env);
    let failed = crate::platform::exec(&mut command);
    Err(Error::Usage {
        kind: Kind::Config,
        message: format!("cannot run `{}`: {failed}", program.to_string_lossy()),
    })
}

fn parse(spec: &str) -> Result<Wanted, Error> {
    let bad = |why: &str| Error::Usage {
        kind: Kind::Config,
        message: format!("--env {spec}: {why}; write VAR=ACCOUNT or VAR=ACCOUNT:bearer"),
    };
    let (var, rest) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let name_ok = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(bad("the variable's name is letters, digits and `_`"));
    }
    let (account, bearer) = match rest.rsplit_once(':') {
        Some((account, "raw")) => (account, false),
        Some((account, "bearer")) => (account, true),
        Some(_) => return Err(bad("the format is `raw` or `bearer`")),
        None => (rest, false),
    };
    if account.is_empty() {
        return Err(bad("no account"));
    }
    Ok(Wanted {
        var: var.to_owned(),
        account: account.to_owned(),
        bearer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_specs_are_read_or_refused_with_the_reason() {
        let ok = |spec: &str| parse(spec).unwrap();
        assert_eq!(
            ok("NPM_TOKEN=work"),
            Wanted {
                var: "NPM_TOKEN".into(),
                account: "work".into(),
                bearer: false
            }
        );
        assert!(ok("AUTH=work:bearer").bearer);
        assert!(!ok("_T=work:raw").bearer);
        for bad in [
            "NPM_TOKEN",
            "=work",
            "1X=work",
            "A-B=work",
            "X=",
            "X=work:json",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("VAR=ACCOUNT"), "{bad}: {e}");
        }
    }
}
