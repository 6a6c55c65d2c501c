//! Test suites of weir, run against a real server over the Postgres
//! protocol. Everything lives in the `sql` test binary (`tests/sql.rs`):
//! the sqllogictest files under `slt/`, each on a fresh server and data
//! directory, in the simple and the extended query protocol, and the crash
//! test that kills a server with SIGKILL under write load.
