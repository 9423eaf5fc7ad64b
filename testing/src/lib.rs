//! Real servers for provider tests: the binaries `./ticketing install` put in
//! `~/.cache/ticketing/tools/bin`, each started on a port of its own with its own data
//! directory, and stopped when the test drops it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An installed tool, e.g. `ferretdb` or `nats-server` (from `./ticketing install`), or
/// `redis-server` (a Debian package, on the PATH).
pub fn tool(name: &str) -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is set");
    let cache = std::env::var("TICKETING_CACHE").unwrap_or_else(|_| format!("{home}/.cache/ticketing"));
    let ours = PathBuf::from(cache).join("tools/bin").join(name);
    if ours.exists() {
        return ours;
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.exists()))
        .unwrap_or_else(|| panic!("{} is missing: run `./ticketing install` first", ours.display()))
}

/// A port for the next server of this test binary. Tests run in parallel threads, so
/// "bind to port 0, then release" could hand two servers the same port; a per-process
/// counter cannot (cargo runs test binaries one after another). The range (13,000 to
/// 25,000) stays clear of the lattice's fixed ports and below the kernel's ephemeral
/// ports (32,768 and up): there a client's own source port could be the one a server is
/// about to listen on, and a connection to a port nobody listens on yet can even
/// connect to itself, so a test took a server for started that was not (two CI runs
/// failed so: "Connection refused" right after the server seemed up).
pub fn next_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 13_000 + (std::process::id() % 600) as u16 * 20;
    let _ = NEXT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Server {
    name: String,
    args: Vec<String>,
    child: Option<Child>,
    pub port: u16,
    pub data: tempfile::TempDir,
}

impl Server {
    /// Starts tool `name` with the arguments `args(port, data_dir)` and waits until it
    /// accepts connections.
    pub fn start(name: &str, args: impl Fn(u16, &Path) -> Vec<String>) -> Server {
        let port = next_port();
        let data = tempfile::tempdir().expect("a temporary directory");
        let args = args(port, data.path());
        let mut server = Server { name: name.to_string(), args, child: None, port, data };
        server.spawn();
        server
    }

    /// FerretDB, storing on SQLite in its data directory; or, when
    /// `TICKETING_TEST_POSTGRES` names a PostgreSQL server (`postgres://role@host:port`,
    /// set by `./ticketing test` for its second run of the provider tests, with the role's
    /// password in `PGPASSWORD`, which FerretDB and psql read), on a database of its own
    /// there, made with `psql` (from `TICKETING_TEST_PSQL`, else the PATH).
    pub fn ferretdb() -> Server {
        let postgres = std::env::var("TICKETING_TEST_POSTGRES").ok();
        Server::start("ferretdb", |port, data| {
            let mut args = vec!["--listen-addr".into(), format!("127.0.0.1:{port}"), "--data-dir".into(), data.display().to_string()];
            if let Some(server) = &postgres {
                args.extend(["--postgresql-url".into(), create_database(server, &format!("ferretdb_{port}"))]);
            }
            args
        })
    }

    /// Starts it again after [`Server::stop`], same port and data.
    pub fn spawn(&mut self) {
        let child = Command::new(tool(&self.name))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Database `name` on PostgreSQL server `server` (made afresh); returns its URL.
fn create_database(server: &str, name: &str) -> String {
    let psql = std::env::var("TICKETING_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    for statement in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        let done = Command::new(&psql)
            .args(["-X", "-q", "-d", &format!("{server}/postgres"), "-c", &statement])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {psql}: {e}"));
        assert!(done.status.success(), "{statement}: {}", String::from_utf8_lossy(&done.stderr));
    }
    format!("{server}/{name}")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
