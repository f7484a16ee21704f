//! Package registries that take the sign-in's token: real cargo fetches a crate from an
//! `auth-required` sparse registry through Lanyard's credential provider.

use std::path::Path;

use crate::support::{Env, Idp, Registry};

/// The crate the registry holds.
const CRATE: &str = "lanyardtestcrate";

/// `cargo` as the tests' own toolchain has it.
fn cargo() -> tokio::process::Command {
    tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Packs a one-function crate with `cargo package`; the `.crate` file's path.
async fn pack(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{CRATE}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             description = \"a crate for Lanyard's tests\"\nlicense = \"MIT\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub fn hello() -> &'static str { \"hi\" }\n",
    )
    .unwrap();
    let out = cargo()
        .args(["package", "--offline", "--no-verify", "--allow-dirty"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("target/package/{CRATE}-0.1.0.crate"))
}

/// `cargo fetch` in `app` with a fresh cargo home: every request goes to the registry.
async fn fetch(env: &Env, app: &Path, home: &str) -> (bool, String) {
    let mut cmd = cargo();
    cmd.arg("fetch")
        .current_dir(app)
        .env("CARGO_HOME", env.path(home))
        .env("LANYARD_CONFIG", &env.config)
        .env_remove("RUST_LOG");
    for (k, v) in env.vars() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Cargo fetches a crate from a registry that checks every request's token at the
/// provider, with `credential-provider = ["lanyard", "cargo-credential", …]`. A registry
/// the account does not list gets nothing; through the agent, cargo needs its approval;
/// after `lanyard logout`, cargo fails with Lanyard's message.
#[tokio::test]
async fn cargo_fetches_from_a_registry_that_wants_the_token() {
    let idp = Idp::start(false);
    let env = Env::new();
    let krate = pack(Path::new(&env.path("pkg"))).await;
    let userinfo = idp.url_of("userinfo_endpoint").await;
    let registry = Registry::start(&userinfo, &krate, CRATE, "0.1.0");
    let host = registry.url.trim_start_matches("https://").to_owned();

    // The app that depends on the crate, and cargo's configuration for the registry.
    let app = Path::new(&env.path("app")).to_owned();
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::create_dir_all(app.join(".cargo")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{CRATE} = {{ version = \"0.1\", registry = \"lanyard-test\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(app.join("src/main.rs"), "fn main() {}\n").unwrap();
    let config = |account: &str| {
        format!(
            "[registries.lanyard-test]\nindex = \"sparse+{}/index/\"\n\
             credential-provider = [\"{}\", \"cargo-credential\", \"--account\", \"{account}\"]\n\
             [http]\ncainfo = \"{}\"\n",
            registry.url,
            env!("CARGO_BIN_EXE_lanyard"),
            registry.ca.display()
        )
    };
    std::fs::write(app.join(".cargo/config.toml"), config("c-cargo")).unwrap();

    env.public_account("c-cargo", &idp);
    let accounts = std::fs::read_to_string(&env.config).unwrap().replace(
        "[accounts.c-cargo]\n",
        &format!("[accounts.c-cargo]\nregistry_hosts = [\"{host}\"]\n"),
    );
    std::fs::write(&env.config, &accounts).unwrap();
    env.lanyard(&["login", "c-cargo"]).await.assert_ok();

    let (ok, said) = fetch(&env, &app, "cargo-home-1").await;
    assert!(ok, "{said}");
    let (served, _) = registry.seen().await;
    assert!(served >= 3, "config, index and download: {served}");
    let downloaded = std::fs::read_dir(env.path("cargo-home-1") + "/registry/cache")
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .any(|f| f.unwrap().file_name().to_string_lossy().starts_with(CRATE));
    assert!(downloaded, "the crate is not in cargo's cache");

    // An account that does not list the registry's host: no token for it.
    env.public_account("c-other", &idp);
    env.lanyard(&["login", "c-other"]).await.assert_ok();
    std::fs::write(app.join(".cargo/config.toml"), config("c-other")).unwrap();
    let (_, refused_before) = registry.seen().await;
    let (ok, said) = fetch(&env, &app, "cargo-home-2").await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("not in the account's registry_hosts"),
        "{said}"
    );
    let (_, refused_after) = registry.seen().await;
    assert!(
        refused_after > refused_before,
        "cargo asked without a token"
    );

    // With the agent running, cargo asks it, as the app `lanyard allow` names: refused
    // until allowed, then served.
    std::fs::write(app.join(".cargo/config.toml"), config("c-cargo")).unwrap();
    let agent = env.start_agent().await;
    let (ok, said) = fetch(&env, &app, "cargo-home-4").await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("has not been allowed to use c-cargo's tokens"),
        "{said}"
    );
    let cargo_exe =
        std::fs::canonicalize(std::env::var("CARGO").expect("the tests run under cargo")).unwrap();
    env.lanyard(&["allow", "c-cargo", &cargo_exe.display().to_string()])
        .await
        .assert_ok();
    let (ok, said) = fetch(&env, &app, "cargo-home-5").await;
    assert!(ok, "{said}");
    drop(agent);

    // Signed out: cargo fails, and says why in Lanyard's words.
    std::fs::write(app.join(".cargo/config.toml"), config("c-cargo")).unwrap();
    env.lanyard(&["logout", "c-cargo", "--no-browser"])
        .await
        .assert_ok();
    let (ok, said) = fetch(&env, &app, "cargo-home-3").await;
    assert!(!ok, "{said}");
    assert!(said.contains("lanyard: c-cargo: sign-in needed"), "{said}");
}
