//! Starts the real `strongroom` binary on an ephemeral port with a fresh data
//! folder and, for PostgreSQL and MariaDB, a fresh database of its own.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{Client, Method, RequestBuilder, Response};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// Set (to anything) to run every server of the suite with encryption at rest.
pub const ENCRYPTION_SWITCH: &str = "STRONGROOM_TEST_ENCRYPTION";

/// A database backend the tests can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// SQLite always; PostgreSQL and MariaDB when their URLs are in the environment.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("STRONGROOM_TEST_POSTGRES").is_ok() {
        v.push(Backend::Postgres);
    }
    if std::env::var("STRONGROOM_TEST_MYSQL").is_ok() {
        v.push(Backend::MySql);
    }
    v
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strongroom"))
}

/// Writes a file only its owner may read, as the server requires of password files.
pub fn write_secret(path: &std::path::Path, content: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    std::io::Write::write_all(&mut f, content.as_bytes()).unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sr-it-{tag}-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A database created for one test and dropped afterwards.
pub struct TestDb {
    pub backend: Backend,
    /// URL the server connects with (None for SQLite in the data folder).
    pub url: Option<String>,
    admin_url: Option<String>,
    name: String,
}

fn replace_db(url: &str, name: &str) -> String {
    let (base, rest) = url.rsplit_once('/').expect("database URL has a path");
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{base}/{name}{query}")
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        let admin_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(std::env::var("STRONGROOM_TEST_POSTGRES").unwrap()),
            Backend::MySql => Some(std::env::var("STRONGROOM_TEST_MYSQL").unwrap()),
        };
        Self::create_at(backend, admin_url).await
    }

    /// Creates the database through `admin_url` (a server URL with any database name).
    pub async fn create_at(backend: Backend, admin_url: Option<String>) -> TestDb {
        let name = format!("t_{}", rand::random::<u32>());
        if let Some(u) = &admin_url {
            run_admin_sql(backend, u, &format!("CREATE DATABASE {name}")).await;
        }
        let url = admin_url.as_deref().map(|u| replace_db(u, &name));
        TestDb { backend, url, admin_url, name }
    }

    pub async fn drop_db(&self) {
        if let Some(u) = &self.admin_url {
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            };
            run_admin_sql(self.backend, u, &sql).await;
        }
    }
}

async fn run_admin_sql(backend: Backend, url: &str, sql: &str) {
    use sqlx::{AssertSqlSafe, Connection};
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut c).await.expect(sql);
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(url).await.expect("connect to MariaDB");
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut c).await.expect(sql);
        }
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let c = rusqlite::Connection::open(path).expect("open SQLite");
            c.execute_batch(sql).expect(sql);
        }
    }
}

/// A running server.
pub struct Server {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub db: TestDb,
    child: Option<Child>,
    /// Everything the server wrote to stdout and stderr.
    pub output: Arc<Mutex<String>>,
    pub client: Client,
    extra_env: Vec<(String, String)>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        Self::start_on(TestDb::create(backend).await, env).await
    }

    pub async fn start_on(db: TestDb, env: &[(&str, &str)]) -> Server {
        let data_dir = temp_dir("data");
        let pw = data_dir.with_extension("pw");
        write_secret(&pw, ADMIN_PASSWORD);
        let mut extra_env: Vec<(String, String)> =
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        // The whole suite can run with encryption at rest on (scripts/test does
        // so for litmus and the sync clients): a key file beside the data
        // folder, and encryption enabled before the first start.
        let encrypted = std::env::var_os(ENCRYPTION_SWITCH).is_some()
            && !extra_env.iter().any(|(k, _)| k.starts_with("STRONGROOM_ENCRYPTION_"));
        if encrypted {
            let keys = data_dir.with_extension("keys");
            extra_env.push(("STRONGROOM_ENCRYPTION_KEY_FILE".into(), keys.display().to_string()));
        }
        let mut s = Server {
            base: String::new(),
            port: 0,
            data_dir,
            db,
            child: None,
            output: Arc::new(Mutex::new(String::new())),
            client: Client::builder().pool_max_idle_per_host(16).build().unwrap(),
            extra_env,
        };
        if encrypted {
            s.cli_ok(&["encryption", "enable"]);
        }
        s.spawn(&[("--admin-password-file", pw.to_str().unwrap())]);
        s.wait_ready().await;
        s
    }

    /// A command on this server's installation (same data folder and database).
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data-dir").arg(&self.data_dir);
        if let Some(u) = &self.db.url {
            c.env("STRONGROOM_DATABASE_URL", u);
        }
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    fn spawn(&mut self, extra: &[(&str, &str)]) {
        if self.port == 0 {
            self.port = free_port();
            self.base = format!("http://127.0.0.1:{}", self.port);
        }
        let mut c = self.command();
        c.arg("serve").arg("--listen").arg(format!("127.0.0.1:{}", self.port));
        for (k, v) in extra {
            c.arg(k).arg(v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = c.spawn().expect("start strongroom");
        for pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let out = self.output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        self.child = Some(child);
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Over TLS the plain client cannot ask; an open port is enough.
        if self.extra_env.iter().any(|(k, _)| k == "STRONGROOM_TLS_CERT") {
            while Instant::now() < deadline {
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while Instant::now() < deadline {
            if let Ok(r) = self.client.get(format!("{}/status.php", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not start:\n{}", self.output.lock().unwrap());
    }

    /// Kills the process with SIGKILL (no chance to clean up).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, data and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn(&[]);
        self.wait_ready().await;
    }

    /// A new app password of `user`, asked for with its real password.
    pub async fn app_password(&self, user: &str, password: &str) -> String {
        let r = self
            .client
            .get(self.url("/ocs/v2.php/core/getapppassword?format=json"))
            .header("OCS-APIRequest", "true")
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        let (code, body) = text(r).await;
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["ocs"]["data"]["apppassword"].as_str().expect("an app password").to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("server running")
    }

    pub fn log(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to `path` under the user's files, with Basic auth.
    pub fn dav(&self, method: &str, user: &str, password: &str, path: &str) -> RequestBuilder {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}/remote.php/dav/files/{user}{path}", self.base);
        self.client.request(m, url).basic_auth(user, Some(password))
    }

    pub fn admin(&self, method: &str, path: &str) -> RequestBuilder {
        self.dav(method, "admin", ADMIN_PASSWORD, path)
    }

    /// Runs one SQL statement on this installation's database (to stage
    /// states a test cannot wait for, such as a share whose date has passed).
    pub async fn sql(&self, sql: &str) {
        let url = match &self.db.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("strongroom.db").display()),
        };
        run_admin_sql(self.db.backend, &url, sql).await;
    }

    /// The number a `SELECT COUNT(*) …` gives on this installation's database.
    pub async fn sql_count(&self, sql: &str) -> i64 {
        use sqlx::{AssertSqlSafe, Connection};
        let url = match &self.db.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("strongroom.db").display()),
        };
        let text = || AssertSqlSafe(sql.to_owned());
        match self.db.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&url).await.expect("connect to PostgreSQL");
                sqlx::query_scalar(text()).fetch_one(&mut c).await.expect(sql)
            }
            Backend::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&url).await.expect("connect to MariaDB");
                sqlx::query_scalar(text()).fetch_one(&mut c).await.expect(sql)
            }
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(url.trim_start_matches("sqlite://"))
                    .expect("open SQLite");
                c.query_row(sql, [], |r| r.get(0)).expect(sql)
            }
        }
    }

    /// Runs an admin command on this installation; panics unless it succeeds.
    /// Returns standard output and standard error.
    pub fn cli_ok(&self, args: &[&str]) -> (String, String) {
        let out = self.command().args(args).output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "strongroom {args:?} failed:\n{o}\n{e}");
        (o, e)
    }

    /// Creates a user through the command line.
    pub fn add_user(&self, uid: &str, password: &str) {
        let pwf = self.data_dir.with_extension(format!("{uid}.pw"));
        write_secret(&pwf, password);
        let out = self
            .command()
            .args(["user", "add", uid, "--password-file"])
            .arg(&pwf)
            .output()
            .unwrap();
        assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub async fn stop(mut self) {
        self.kill();
        if std::env::var_os(ENCRYPTION_SWITCH).is_some()
            && self.extra_env.iter().any(|(k, _)| k == "STRONGROOM_ENCRYPTION_KEY_FILE")
        {
            // The encrypted pass must really have encrypted everything it stored.
            let (out, _) = self.cli_ok(&["encryption", "status"]);
            assert!(out.contains("plaintext: 0 blobs"), "content stored in clear:\n{out}");
        }
        self.db.drop_db().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The body of a response as text, with its status.
pub async fn text(r: Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}
