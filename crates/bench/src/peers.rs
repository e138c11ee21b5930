//! The servers under test: Strongroom (release binary, fresh data folder, a
//! bench user with an app password) and Apache httpd with mod_dav, each a
//! child process on a loopback port, stopped (SIGTERM, then SIGKILL) when
//! dropped.

use std::{
    fs,
    io::Write,
    net::{SocketAddr, TcpListener},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::client::{self, Req, Target};

pub const USER: &str = "bench";

/// A child process that is stopped when dropped.
pub struct Proc {
    child: Option<Child>,
    pub pid: u32,
    name: String,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, String> {
        let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc { pid: child.id(), child: Some(child), name: name.to_owned() })
    }

    /// Whether the process has ended (it is reaped then).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, up to 15 s of grace, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("# {} (pid {}) did not stop on SIGTERM; killing it", self.name, self.pid);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Writes a file only its owner may read (mode 0600).
pub fn write_secret(path: &Path, content: &str) -> Result<(), String> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(content.as_bytes()).map_err(|e| e.to_string())
}

/// A random password of 24 letters and digits.
pub fn random_password() -> String {
    const A: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..24).map(|_| A[rand::random_range(0..A.len())] as char).collect()
}

fn tail(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `path` until it answers 200, or the process ends, or 30 s pass.
async fn wait_ready(
    proc: &mut Proc,
    addr: SocketAddr,
    path: &str,
    log: &Path,
) -> Result<(), String> {
    let target = Target::anonymous(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(st) = proc.exited() {
            return Err(format!("{} exited ({st}) while starting:\n{}", proc.name, tail(log)));
        }
        if let Ok(a) = client::once(&target, &Req::new("GET", path)).await
            && a.status == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{} did not answer {path} within 30 s:\n{}", proc.name, tail(log)))
}

/// A running Strongroom.
pub struct Strongroom {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The bench user's real password and the app password made from it.
    pub password: String,
    pub app_password: String,
    /// Resident memory 2 s after the server answered its first request
    /// (before the bench user and the app password existed), KiB.
    pub rss_at_start_kib: u64,
}

/// The Strongroom data folder inside an instance folder.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Creates the installation's database (migrations) without starting the
/// server, so that it can be seeded before the first start.
pub fn strongroom_migrate(bin: &Path, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir(dir))
        .args(["db", "migrate"])
        .env("STRONGROOM_LOG_LEVEL", "warn")
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!("strongroom db migrate: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

impl Strongroom {
    /// Starts the server on the instance folder `dir` (its data folder is
    /// created when missing), creates the bench user with the CLI and gets an
    /// app password through OCS.
    pub async fn start(bin: &Path, dir: &Path) -> Result<Strongroom, String> {
        Self::start_with(bin, dir, false).await
    }

    /// Like [`Strongroom::start`]; with `encrypted`, encryption at rest is
    /// enabled before the first start, with a key file beside the data folder.
    pub async fn start_with(bin: &Path, dir: &Path, encrypted: bool) -> Result<Strongroom, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let data = data_dir(dir);
        let keys = dir.join("master.keys");
        let with_keys = |c: &mut Command| {
            if encrypted {
                c.env("STRONGROOM_ENCRYPTION_KEY_FILE", &keys);
            }
        };
        if encrypted {
            let mut c = Command::new(bin);
            c.arg("--data-dir").arg(&data).args(["encryption", "enable"]);
            c.env("STRONGROOM_LOG_LEVEL", "warn");
            with_keys(&mut c);
            let out = c.output().map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "strongroom encryption enable: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let admin_pw = dir.join("admin.pw");
        write_secret(&admin_pw, &random_password())?;
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut cmd = Command::new(bin);
        cmd.arg("--data-dir").arg(&data).arg("serve").arg("--listen").arg(addr.to_string());
        cmd.arg("--admin-password-file").arg(&admin_pw);
        with_keys(&mut cmd);
        let log = dir.join("server.log");
        let mut proc = Proc::spawn("strongroom", cmd, &log)?;
        wait_ready(&mut proc, addr, "/status.php", &log).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_at_start_kib = crate::measure::tree_rss_kib(proc.pid);

        let password = random_password();
        let pw_file = dir.join("bench.pw");
        write_secret(&pw_file, &password)?;
        let mut add = Command::new(bin);
        add.arg("--data-dir").arg(&data).args(["user", "add", USER, "--password-file"]);
        add.arg(&pw_file).env("STRONGROOM_LOG_LEVEL", "warn");
        with_keys(&mut add);
        let out = add.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("strongroom user add: {}", String::from_utf8_lossy(&out.stderr)));
        }

        let real = Target::new(addr, USER, &password);
        let req = Req::new("GET", "/ocs/v2.php/core/getapppassword?format=json")
            .header("OCS-APIRequest", "true");
        let a = client::once(&real, &req).await.map_err(|e| format!("getapppassword: {e}"))?;
        let json: serde_json::Value = serde_json::from_slice(&a.body)
            .map_err(|e| format!("getapppassword answered {} with no JSON ({e})", a.status))?;
        let app_password = json["ocs"]["data"]["apppassword"]
            .as_str()
            .ok_or_else(|| format!("getapppassword answered {}: {json}", a.status))?
            .to_owned();
        Ok(Strongroom { proc, addr, password, app_password, rss_at_start_kib })
    }

    pub fn root(&self) -> String {
        format!("/remote.php/dav/files/{USER}/")
    }

    pub fn target(&self) -> Arc<Target> {
        Target::new(self.addr, USER, &self.app_password)
    }

    pub fn target_real_password(&self) -> Arc<Target> {
        Target::new(self.addr, USER, &self.password)
    }
}

/// How Apache's htpasswd file hashes the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApacheHash {
    /// `{SHA}`: one SHA-1, the cheapest check Apache has (strictest baseline).
    Sha1,
    /// `$apr1$`: htpasswd's default, 1,000 rounds of MD5.
    Md5,
    /// `$2y$`: bcrypt, cost 5 (htpasswd -B).
    Bcrypt,
}

/// A running Apache httpd with mod_dav.
pub struct Apache {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub password: String,
}

const APACHE_CONF: &str = include_str!("../../../bench/apache-httpd.conf");

/// Installs Debian's apache2 and apache2-utils when missing (needs root).
pub fn ensure_apache() -> Result<(), String> {
    if Path::new("/usr/sbin/apache2").exists() && Path::new("/usr/bin/htpasswd").exists() {
        return Ok(());
    }
    eprintln!("# installing apache2 and apache2-utils with apt-get");
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    let updated = ok(Command::new("apt-get").args(["update", "-qq"]));
    let installed = ok(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "apache2", "apache2-utils"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if !(updated && installed) {
        return Err("the peer needs Debian's apache2 and apache2-utils: apt-get install apache2 apache2-utils (as root)".into());
    }
    Ok(())
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:").map(|v| v.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

impl Apache {
    pub async fn start(dir: &Path, hash: ApacheHash) -> Result<Apache, String> {
        ensure_apache()?;
        let io = |e: std::io::Error| format!("{}: {e}", dir.display());
        for sub in ["htdocs/static", "htdocs/dav", "logs", "run", "lock"] {
            fs::create_dir_all(dir.join(sub)).map_err(io)?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io)?;
        let static_file: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        fs::write(dir.join("htdocs/static/4k.bin"), static_file).map_err(io)?;

        // As root, Apache's workers run as www-data, which must own what DAV writes.
        let user = if running_as_root() {
            for sub in ["htdocs/dav", "lock"] {
                let st = Command::new("chown")
                    .args(["-R", "www-data:www-data"])
                    .arg(dir.join(sub))
                    .status()
                    .map_err(io)?;
                if !st.success() {
                    return Err(format!("chown www-data {}", dir.join(sub).display()));
                }
            }
            "User www-data\nGroup www-data"
        } else {
            ""
        };

        let password = random_password();
        let flag = match hash {
            ApacheHash::Sha1 => "-s",
            ApacheHash::Md5 => "-m",
            ApacheHash::Bcrypt => "-B",
        };
        let htpasswd = dir.join("htpasswd");
        let mut child = Command::new("htpasswd")
            .args(["-c", "-i", flag])
            .arg(&htpasswd)
            .arg(USER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("htpasswd: {e}"))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(password.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("htpasswd: {}", String::from_utf8_lossy(&out.stderr)));
        }
        fs::set_permissions(&htpasswd, fs::Permissions::from_mode(0o644)).map_err(io)?;

        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let root = dir.to_str().ok_or("the work folder's path is not UTF-8")?;
        let conf = APACHE_CONF
            .replace("@ROOT@", root)
            .replace("@PORT@", &port.to_string())
            .replace("@USER@", user);
        let conf_path = dir.join("httpd.conf");
        fs::write(&conf_path, conf).map_err(io)?;
        let mut cmd = Command::new("/usr/sbin/apache2");
        cmd.arg("-d").arg(dir).arg("-f").arg(&conf_path).arg("-DFOREGROUND");
        // Debian's apache2 reads nothing from /etc/apache2 with -f; keep its
        // environment helpers from pointing anywhere else.
        cmd.env_remove("APACHE_CONFDIR").env("LANG", "C");
        let log = dir.join("logs/console.log");
        let mut proc = Proc::spawn("apache2", cmd, &log)?;
        wait_ready(&mut proc, addr, "/static/4k.bin", &log).await?;
        Ok(Apache { proc, addr, password })
    }

    pub fn root(&self) -> String {
        "/dav/".to_owned()
    }

    pub fn target(&self) -> Arc<Target> {
        Target::new(self.addr, USER, &self.password)
    }

    /// Unauthenticated static file: the driver's ceiling.
    pub fn static_path(&self) -> String {
        "/static/4k.bin".to_owned()
    }
}
