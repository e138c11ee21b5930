//! Integration tests: the real binary, real HTTP, every database backend the
//! environment offers (SQLite always; PostgreSQL and MariaDB when
//! `STRONGROOM_TEST_POSTGRES` / `STRONGROOM_TEST_MYSQL` hold URLs).

mod badinput;
mod clients;
mod crash;
mod encryption;
mod harness;
mod litmus;
mod nc_py_api;
mod ops;
mod outage;
mod provisioning;
mod regressions;
mod security;
mod sharing;
mod sharing_routes;
mod sync_clients;
mod sync_fixtures;
mod twofactor;
mod webdav;
